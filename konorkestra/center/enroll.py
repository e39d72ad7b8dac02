"""Node enrollment: join tokens, certificate issue and renewal, node revocation.

Usage::

    svc = EnrollmentService(engine, ca=ca, hasher=TokenHasher.load_or_create(data / "enroll.key"),
                            join_tokens=schema.join_tokens, nodes=schema.nodes, audit=audit)
    token, record = svc.create_token(TokenSpec(groups=("checkout",)), created_by="alice")
    enrolled = svc.enroll(str(token), csr_pem, requested_name="web-1")
    svc.revoke_node(enrolled.node.id, by="alice")
    assert not svc.node_allowed(enrolled.node.id)

Invariants:

- A join token is ``<id>.<secret>``: id 8 chars ``[a-z0-9]``, secret 32 URL-safe
  chars (192 bits). The Center stores only HMAC-SHA256(server key, token); the key
  lives in the data directory (0600), never in the database.
- A token is consumed by one conditional ``UPDATE ... WHERE used_at IS NULL AND
  revoked_at IS NULL AND expires_at > now`` whose rowcount decides: of any number
  of concurrent joins, exactly one wins. Consuming the token, inserting the node
  and the audit record commit together or not at all.
- Unknown, malformed, wrong-secret, expired, revoked, reused and wrongly-bound
  tokens all fail with the same :data:`TOKEN_REFUSED` message; secrets are compared
  with :func:`hmac.compare_digest`, and an unknown id still costs one HMAC.
- The CSR is checked before the token is touched, so a bad CSR never burns a token.
- A node is allowed iff its row exists and ``revoked_at`` is NULL. Authorization
  reads go through a :class:`~konorkestra.center.nodecache.NodeCache`; every write
  of this service to a node row drops the node's entry after commit, so a
  revocation is effective on the next request. ``get_node`` and ``list_nodes``
  (the operator views, with ``last_seen``) always read the store.
- Renewal needs an allowed node and a fresh key (a CSR for the key in use is refused).
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
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.audit import append as audit_append
from konorkestra.center.ca import (
    DEFAULT_NODE_LIFETIME,
    NODE_ID_PATTERN,
    CertificateAuthority,
    IssuedCertificate,
    check_csr,
    spki_pin_of_key,
    write_private_file,
)
from konorkestra.center.nodecache import Miss, NodeCache
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader, utc
from konorkestra.model.types import GroupName, NodeId

TOKEN_REFUSED = "join token is invalid, expired, revoked or already used"
DEFAULT_TOKEN_TTL = dt.timedelta(minutes=15)
MAX_TOKEN_TTL = dt.timedelta(hours=24)
_TOKEN = re.compile(r"^([a-z0-9]{6,12})\.([A-Za-z0-9_-]{22,128})$")
_GROUP = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9._:/-]{0,128}$")
_NODE_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")

AuditFn = Callable[[Connection, str, str, Mapping[str, Any]], object]
"""``audit(conn, actor, action, details)``: append an audit event in the caller's transaction."""


class EnrollmentError(Exception):
    """Base of enrollment errors; the message is safe to show to the caller."""


class EnrollmentRefused(EnrollmentError):
    """The join was refused (always :data:`TOKEN_REFUSED` for token problems)."""


class InvalidTokenSpec(EnrollmentError):
    """A token request has bad groups, labels, node name or TTL."""


class RateLimited(EnrollmentError):
    """Too many attempts from one source; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many join attempts; retry in {retry_after:.0f}s")
        self.retry_after = retry_after


class NodeNotAllowed(EnrollmentError):
    """The node is unknown or revoked."""


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
            raise EnrollmentRefused(TOKEN_REFUSED)
        return cls(match.group(1), match.group(2))


class TokenHasher:
    """HMAC-SHA256 of tokens under a server key that never enters the database."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("token HMAC key must be at least 32 bytes")
        self._key = key
        self._dummy = self.digest(JoinToken("unknown0", "x" * 32))

    @classmethod
    def load_or_create(cls, path: Path) -> TokenHasher:
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
class TokenSpec:
    """What an operator asks for: the scope a node joining with the token receives."""

    groups: tuple[GroupName, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    node_name: str | None = None
    ttl: dt.timedelta = DEFAULT_TOKEN_TTL

    def validate(self) -> None:
        if not self.groups:
            raise InvalidTokenSpec("a join token needs at least one group")
        for group in self.groups:
            if not _GROUP.match(group):
                raise InvalidTokenSpec(f"invalid group name {group!r}")
        for key, value in self.labels.items():
            if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
                raise InvalidTokenSpec(f"invalid label {key}={value}")
        if self.node_name is not None and not _NODE_NAME.match(self.node_name):
            raise InvalidTokenSpec(f"invalid node name {self.node_name!r}")
        if not dt.timedelta(minutes=1) <= self.ttl <= MAX_TOKEN_TTL:
            raise InvalidTokenSpec("token TTL must be between 1 minute and 24 hours")


@dataclass(frozen=True)
class TokenRecord:
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


@dataclass(frozen=True)
class NodeRecord:
    id: NodeId
    name: str
    groups: tuple[GroupName, ...]
    labels: Mapping[str, str]
    cert_serial: str | None
    cert_not_after: dt.datetime | None
    revoked_at: dt.datetime | None
    last_seen: dt.datetime | None
    created_at: dt.datetime


@dataclass(frozen=True)
class Enrolled:
    node: NodeRecord
    certificate: IssuedCertificate


# --- rows -----------------------------------------------------------------------------


def _required(value: object) -> dt.datetime:
    parsed = utc(value)
    if parsed is None:
        raise EnrollmentError("store row lacks a required timestamp")
    return parsed


def _token_record(row: sa.Row[Any]) -> TokenRecord:
    m = row._mapping
    return TokenRecord(
        id=m["id"],
        groups=tuple(GroupName(g) for g in m["groups"] or ()),
        labels=dict(m["labels"] or {}),
        node_name=m["node_name"],
        expires_at=_required(m["expires_at"]),
        used_at=utc(m["used_at"]),
        used_by=m["used_by"],
        revoked_at=utc(m["revoked_at"]),
        created_by=m["created_by"],
        created_at=_required(m["created_at"]),
    )


def _node_record(row: sa.Row[Any]) -> NodeRecord:
    m = row._mapping
    return NodeRecord(
        id=NodeId(m["id"]),
        name=m["name"],
        groups=tuple(GroupName(g) for g in m["groups"] or ()),
        labels=dict(m["labels"] or {}),
        cert_serial=None if m["cert_serial"] is None else str(m["cert_serial"]),
        cert_not_after=utc(m["cert_not_after"]),
        revoked_at=utc(m["revoked_at"]),
        last_seen=utc(m["last_seen"]),
        created_at=_required(m["created_at"]),
    )


# --- the service ----------------------------------------------------------------------


class EnrollmentService:
    """Join tokens and nodes over the store's ``join_tokens`` and ``nodes`` tables."""

    def __init__(
        self,
        engine: Engine,
        *,
        ca: CertificateAuthority,
        hasher: TokenHasher,
        join_tokens: sa.Table = schema.join_tokens,
        nodes: sa.Table = schema.nodes,
        audit: AuditFn | None = audit_append,
        cert_lifetime: dt.timedelta = DEFAULT_NODE_LIFETIME,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.engine, self.ca, self.hasher = engine, ca, hasher
        self.tokens, self.nodes = join_tokens, nodes
        self._audit = audit
        self.cert_lifetime = cert_lifetime
        self.clock = clock
        self.cache: NodeCache[NodeRecord] = NodeCache()

    def _record(
        self, conn: Connection, actor: str, action: str, details: Mapping[str, Any]
    ) -> None:
        if self._audit is not None:
            self._audit(conn, actor, action, details)

    def _now(self) -> dt.datetime:
        return self.clock().replace(microsecond=0)

    # tokens

    def create_token(self, spec: TokenSpec, *, created_by: str) -> tuple[JoinToken, TokenRecord]:
        spec.validate()
        token, now = JoinToken.generate(), self._now()
        t = self.tokens.c
        values = {
            "id": token.id,
            "secret_hmac": self.hasher.digest(token),
            "groups": list(spec.groups),
            "labels": dict(spec.labels),
            "node_name": spec.node_name,
            "expires_at": now + spec.ttl,
            "created_by": created_by,
            "created_at": now,
        }
        with self.engine.begin() as conn:
            conn.execute(sa.insert(self.tokens).values(**values))
            details = {
                "token_id": token.id,
                "groups": list(spec.groups),
                "ttl": int(spec.ttl.total_seconds()),
            }
            self._record(conn, created_by, "join_token.created", details)
            row = conn.execute(sa.select(self.tokens).where(t.id == token.id)).one()
        return token, _token_record(row)

    def list_tokens(self) -> list[TokenRecord]:
        with reader(self.engine).connect() as conn:  # read-only: no write lock
            rows = conn.execute(sa.select(self.tokens).order_by(self.tokens.c.created_at)).all()
        return [_token_record(r) for r in rows]

    def revoke_token(self, token_id: str, *, by: str) -> bool:
        """Revoke an unused token; ``False`` if no such unused, unrevoked token exists."""
        t = self.tokens.c
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(self.tokens)
                .where(t.id == token_id, t.used_at.is_(None), t.revoked_at.is_(None))
                .values(revoked_at=self._now())
            )
            if result.rowcount == 1:
                self._record(conn, by, "join_token.revoked", {"token_id": token_id})
        return result.rowcount == 1

    # enrollment

    def enroll(
        self,
        token_text: str,
        csr_pem: bytes,
        *,
        requested_name: str | None = None,
        source: str = "",
    ) -> Enrolled:
        """Consume the token (exactly once) and issue the new node's certificate.

        A refusal is audited (``node.enroll_refused``) in its own transaction.
        """
        check_csr(csr_pem)
        if requested_name is not None and not _NODE_NAME.match(requested_name):
            raise InvalidTokenSpec(f"invalid node name {requested_name!r}")
        try:
            return self._enroll(token_text, csr_pem, requested_name, source)
        except EnrollmentRefused:
            token_id = token_text.partition(".")[0][:12]
            with self.engine.begin() as conn:
                details = {"token_id": token_id, "source": source}
                self._record(conn, "anonymous", "node.enroll_refused", details)
            raise

    def _enroll(
        self, token_text: str, csr_pem: bytes, requested_name: str | None, source: str
    ) -> Enrolled:
        token = JoinToken.parse(token_text)
        now = self._now()
        node_id = NodeId(secrets.token_hex(8))
        t = self.tokens.c
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(self.tokens).where(t.id == token.id)).first()
            stored = None if row is None else row._mapping["secret_hmac"]
            if not self.hasher.matches(token, stored) or row is None:
                raise EnrollmentRefused(TOKEN_REFUSED)
            record = _token_record(row)
            bound = record.node_name
            if bound is not None and requested_name not in (None, bound):
                raise EnrollmentRefused(TOKEN_REFUSED)
            consumed = conn.execute(
                sa.update(self.tokens)
                .where(
                    t.id == token.id,
                    t.secret_hmac == stored,
                    t.used_at.is_(None),
                    t.revoked_at.is_(None),
                    t.expires_at > now,
                )
                .values(used_at=now, used_by=node_id)
            )
            if consumed.rowcount != 1:
                raise EnrollmentRefused(TOKEN_REFUSED)
            issued = self.ca.sign_node_csr(csr_pem, node_id, lifetime=self.cert_lifetime, now=now)
            n = self.nodes.c
            conn.execute(
                sa.insert(self.nodes).values(
                    id=node_id,
                    name=bound or requested_name or node_id,
                    groups=list(record.groups),
                    labels=dict(record.labels),
                    cert_serial=format(issued.serial, "x"),
                    cert_not_after=issued.not_after,
                    created_at=now,
                )
            )
            details = {
                "node_id": node_id,
                "token_id": token.id,
                "serial": format(issued.serial, "x"),
            }
            self._record(conn, f"node:{node_id}", "node.enrolled", details)
            node_row = conn.execute(sa.select(self.nodes).where(n.id == node_id)).one()
        self.cache.drop(node_id)
        return Enrolled(_node_record(node_row), issued)

    def renew(
        self, node_id: NodeId, csr_pem: bytes, *, presented_key_pin: str
    ) -> IssuedCertificate:
        """A new certificate for an allowed node, for a key other than the one presented."""
        key = check_csr(csr_pem)
        if hmac.compare_digest(spki_pin_of_key(key), presented_key_pin):
            raise EnrollmentError("renewal needs a fresh key; the CSR reuses the current one")
        n = self.nodes.c
        now = self._now()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(self.nodes).where(n.id == node_id)).first()
            if row is None or row._mapping["revoked_at"] is not None:
                raise NodeNotAllowed(f"node {node_id} is revoked or unknown")
            issued = self.ca.sign_node_csr(csr_pem, node_id, lifetime=self.cert_lifetime, now=now)
            conn.execute(
                sa.update(self.nodes)
                .where(n.id == node_id, n.revoked_at.is_(None))
                .values(
                    cert_serial=format(issued.serial, "x"),
                    cert_not_after=issued.not_after,
                )
            )
            details = {"node_id": node_id, "serial": format(issued.serial, "x")}
            self._record(conn, f"node:{node_id}", "node.renewed", details)
        self.cache.drop(node_id)
        return issued

    # nodes

    def node_allowed(self, node_id: NodeId) -> bool:
        """True iff the node exists and is not revoked (see the module invariants)."""
        return self.authorized(node_id) is not None

    def node_allowed_now(self, node_id: NodeId) -> bool | None:
        """:meth:`node_allowed` from memory; ``None`` when only the store can tell."""
        found = self.authorized_now(node_id)
        return None if isinstance(found, Miss) else found is not None

    def authorized_now(self, node_id: str) -> NodeRecord | Miss | None:
        """The record of an allowed node, ``None`` if not allowed, or ``MISS`` (no I/O)."""
        found = self.cache.get(node_id)
        if isinstance(found, Miss) or found is None:
            return found
        return None if found.revoked_at is not None else found

    def authorized(self, node_id: str) -> NodeRecord | None:
        """The record of an allowed node, or ``None`` (unknown or revoked)."""
        found = self.authorized_now(node_id)
        if isinstance(found, NodeRecord) or found is None:
            return found
        if not NODE_ID_PATTERN.match(node_id):
            return None
        token = self.cache.begin()
        record = self.get_node(node_id)
        self.cache.fill(token, node_id, record)
        return None if record is None or record.revoked_at is not None else record

    def list_nodes(self) -> list[NodeRecord]:
        with reader(self.engine).connect() as conn:  # read-only: no write lock
            rows = conn.execute(sa.select(self.nodes).order_by(self.nodes.c.created_at)).all()
        return [_node_record(r) for r in rows]

    def get_node(self, node_id: str) -> NodeRecord | None:
        with reader(self.engine).connect() as conn:  # read-only: no write lock
            row = conn.execute(sa.select(self.nodes).where(self.nodes.c.id == node_id)).first()
        return None if row is None else _node_record(row)

    def revoke_node(self, node_id: str, *, by: str) -> bool:
        """Revoke a node now; ``False`` if it does not exist or is already revoked."""
        n = self.nodes.c
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(self.nodes)
                .where(n.id == node_id, n.revoked_at.is_(None))
                .values(revoked_at=self._now())
            )
            if result.rowcount == 1:
                self._record(conn, by, "node.revoked", {"node_id": node_id})
        self.cache.drop(node_id)
        return result.rowcount == 1
