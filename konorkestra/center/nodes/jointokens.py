"""Join tokens: the token, its hashing, what an operator asks for, the stored record,
and the per-source rate limit of joins. No store access here beyond turning rows
into records (:mod:`konorkestra.center.nodes.enrollment` uses them).

Invariants: a token is ``<id>.<secret>`` (:data:`JOIN_TOKEN_REFUSED` for anything
malformed, the same message as every other refusal); :class:`JoinTokenHasher` keeps
its key in a 0600 file, never in the database; :class:`JoinTokenSpec` validates
groups, labels, node name and TTL before anything is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from konorkestra.center.nodes.records import (
    NODE_NAME,
    EnrollmentError,
    EnrollmentRefused,
    required_utc,
)
from konorkestra.center.pki.ca import write_private_file
from konorkestra.center.store.engine import utc
from konorkestra.model.types import GroupName

JOIN_TOKEN_REFUSED = "join token is invalid, expired, revoked or already used"
DEFAULT_JOIN_TOKEN_TTL = dt.timedelta(minutes=15)
MAX_JOIN_TOKEN_TTL = dt.timedelta(hours=24)
_TOKEN = re.compile(r"^([a-z0-9]{6,12})\.([A-Za-z0-9_-]{22,128})$")
_GROUP = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9._:/-]{0,128}$")


class InvalidJoinTokenSpec(EnrollmentError):
    """A token request has bad groups, labels, node name or TTL."""


class RateLimited(EnrollmentError):
    """Too many attempts from one source; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many join attempts; retry in {retry_after:.0f}s")
        self.retry_after = retry_after


# --- tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinToken:
    """A join token; ``str(token)`` is the ``id.secret`` the operator hands to a node."""

    id: str
    secret: str = field(repr=False)

    def __str__(self) -> str:
        return f"{self.id}.{self.secret}"

    @classmethod
    def generate(cls) -> JoinToken:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        token_id = "".join(secrets.choice(alphabet) for _ in range(8))
        return cls(token_id, secrets.token_urlsafe(24))

    @classmethod
    def parse(cls, text: str) -> JoinToken:
        match = _TOKEN.match(text.strip())
        if match is None:
            raise EnrollmentRefused(JOIN_TOKEN_REFUSED)
        return cls(match.group(1), match.group(2))


class JoinTokenHasher:
    """HMAC-SHA256 of tokens under a server key that never enters the database."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("token HMAC key must be at least 32 bytes")
        self._key = key
        self._dummy = self.digest(JoinToken("unknown0", "x" * 32))

    @classmethod
    def load_or_create(cls, path: Path) -> JoinTokenHasher:
        if not path.exists():
            write_private_file(path, secrets.token_bytes(32))
        if path.stat().st_mode & 0o077:
            raise EnrollmentError(f"{path}: permissions too open; expected 0600")
        return cls(path.read_bytes())

    def digest(self, token: JoinToken) -> str:
        return hmac.new(self._key, str(token).encode(), hashlib.sha256).hexdigest()

    def matches(self, token: JoinToken, stored: str | None) -> bool:
        """Constant-time check; an absent ``stored`` still costs a full comparison."""
        ok = hmac.compare_digest(self.digest(token), stored or self._dummy)
        return ok and stored is not None


class RateLimiter:
    """Token bucket per source: ``burst`` attempts, refilled at one per ``interval`` seconds.

    Keeps at most ``max_sources`` buckets (least recently used are forgotten).
    """

    def __init__(
        self,
        *,
        burst: int = 10,
        interval: float = 6.0,
        max_sources: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst, self._interval, self._max, self._clock = burst, interval, max_sources, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, source: str) -> None:
        """Spend one attempt for ``source`` or raise :class:`RateLimited`."""
        now = self._clock()
        tokens, last = self._buckets.pop(source, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - last) / self._interval)
        if tokens < 1.0:
            self._buckets[source] = (tokens, now)
            raise RateLimited((1.0 - tokens) * self._interval)
        self._buckets[source] = (tokens - 1.0, now)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)


@dataclass(frozen=True)
class JoinTokenSpec:
    """What an operator asks for: the scope a node joining with the token receives."""

    groups: tuple[GroupName, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    node_name: str | None = None
    ttl: dt.timedelta = DEFAULT_JOIN_TOKEN_TTL

    def validate(self) -> None:
        if not self.groups:
            raise InvalidJoinTokenSpec("a join token needs at least one group")
        for group in self.groups:
            if not _GROUP.match(group):
                raise InvalidJoinTokenSpec(f"invalid group name {group!r}")
        for key, value in self.labels.items():
            if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
                raise InvalidJoinTokenSpec(f"invalid label {key}={value}")
        if self.node_name is not None and not NODE_NAME.match(self.node_name):
            raise InvalidJoinTokenSpec(f"invalid node name {self.node_name!r}")
        if not dt.timedelta(minutes=1) <= self.ttl <= MAX_JOIN_TOKEN_TTL:
            raise InvalidJoinTokenSpec("token TTL must be between 1 minute and 24 hours")


@dataclass(frozen=True)
class JoinTokenRecord:
    id: str
    groups: tuple[GroupName, ...]
    labels: Mapping[str, str]
    node_name: str | None
    expires_at: dt.datetime
    used_at: dt.datetime | None
    used_by: str | None
    revoked_at: dt.datetime | None
    created_by: str
    created_at: dt.datetime

    def status(self, now: dt.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.used_at is not None:
            return "used"
        return "expired" if self.expires_at <= now else "active"


# --- rows -----------------------------------------------------------------------------


def join_token_record(row: sa.Row[Any]) -> JoinTokenRecord:
    m = row._mapping
    return JoinTokenRecord(
        id=m["id"],
        groups=tuple(GroupName(g) for g in m["groups"] or ()),
        labels=dict(m["labels"] or {}),
        node_name=m["node_name"],
        expires_at=required_utc(m["expires_at"]),
        used_at=utc(m["used_at"]),
        used_by=m["used_by"],
        revoked_at=utc(m["revoked_at"]),
        created_by=m["created_by"],
        created_at=required_utc(m["created_at"]),
    )
