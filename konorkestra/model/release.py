"""The Release and the references it is made of: one type per word.

The Center, the trust layer and the Agent share these types; each turns its
own representation (a store row, a signed statement, a log record) into them
at its edge.

Example::

    >>> import datetime as dt
    >>> from konorkestra.model.release import ConfigSetRef, PolicyRef, Release
    >>> api = ConfigSetRef("checkout-api", 3, "sha256:" + "ab" * 32, 120)
    >>> api.ref
    'checkout-api@3'
    >>> t = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    >>> rel = Release(group="checkout", sequence=1, digest="sha256:" + "cd" * 32,
    ...     configsets=(api,), policy=PolicyRef("canary", "sha256:" + "ef" * 32, "canary"),
    ...     created_at=t, expires_at=t + dt.timedelta(days=90), commit="0" * 40)
    >>> rel.id
    'checkout-1-cdcdcdcdcdcdcdcd'
    >>> js = rel.to_json()
    >>> js["configsets"][0]["size"], js["policy"]["strategy"], js["previous_id"]
    (120, 'canary', None)
    >>> Release.from_json(rel.to_json()) == rel
    True

Invariants:

* A :class:`ConfigSetRef` names one ConfigSet version and its blob: ``name``,
  ``version``, ``digest`` and, where it is known, ``size`` (the blob's length in
  bytes). The signed statement and the Center always know the size; the
  Agent's store records never kept it, so theirs is ``None``. A ref is a plain
  value: whoever builds one from untrusted input checks it with its own
  errors (the statement parser, the agent store, :meth:`Release.from_json`).
* A :class:`Release` moves one Group to exactly its ConfigSets: at least one,
  sorted by name, one version per name, every digest ``sha256:<hex>``.
* ``sequence`` is at least 1; ``previous_id`` is ``None`` exactly for sequence 1
  and otherwise the id of an earlier Release of the same Group.
* The id is never stored apart from what it names: it is
  ``<group>-<sequence>-<16 hex of digest>`` (:mod:`konorkestra.model.releaseid`),
  where ``digest`` is the signed statement's digest. :meth:`Release.from_json`
  refuses JSON whose ``id`` says otherwise.
* Times are timezone-aware and ``expires_at`` is after ``created_at``.
* ``state``, ``reason`` and ``created_by`` are the Center's record of a Release
  (not signed); they are ``None`` for a Release read from a statement.
* :meth:`Release.to_json` is the Center API's JSON of a Release
  (``docs/reference/api.md``), key for key; :meth:`Release.from_json` reads it
  back and raises :class:`ValueError` naming the field on anything else.
* Pure: no I/O, no clock; every object is immutable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from konorkestra.model.canonical import is_digest
from konorkestra.model.releaseid import parse_release_id, release_id
from konorkestra.model.types import (
    ConfigSetName,
    Digest,
    GroupName,
    PolicyName,
    ReleaseId,
    Sequence,
)

ReleaseState = str
"""Where a Release stands at the Center; today always ``"created"``."""


@dataclass(frozen=True)
class ConfigSetRef:
    """One ConfigSet version in a Release: ``name@version``, its blob digest and size."""

    name: ConfigSetName
    version: int
    digest: Digest
    size: int | None = None
    """The blob's length in bytes; ``None`` where it was not kept (agent store records)."""

    @property
    def ref(self) -> str:
        """``name@version`` (the in-toto subject name)."""
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        """``{"name", "version", "digest", "size"}``, as the API and the predicate spell it."""
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "size": self.size,
        }

    @classmethod
    def from_json(cls, value: object, what: str = "configset") -> ConfigSetRef:
        """Read :meth:`to_json`'s form; ``size`` may be absent or null."""
        m = _mapping(value, what)
        size = m.get("size")
        return cls(
            ConfigSetName(_text(m, "name", what)),
            _int(m, "version", what, minimum=1),
            _digest(m, "digest", what),
            None if size is None else _int(m, "size", what, minimum=0),
        )


@dataclass(frozen=True)
class PolicyRef:
    """The Policy governing a Release, by name and canonical digest.

    ``strategy`` is not signed: the Center shows it beside the digest.
    """

    name: PolicyName
    digest: Digest
    strategy: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"name", "digest", "strategy"}`` as the API spells it."""
        return {"name": self.name, "digest": self.digest, "strategy": self.strategy}

    @classmethod
    def from_json(cls, value: object, what: str = "policy") -> PolicyRef:
        """Read :meth:`to_json`'s form (other keys, such as a stored ``body``, are ignored)."""
        m = _mapping(value, what)
        strategy = m.get("strategy")
        return cls(
            PolicyName(_text(m, "name", what)),
            _digest(m, "digest", what),
            None if strategy is None else _text(m, "strategy", what),
        )


@dataclass(frozen=True)
class Release:
    """An immutable, signed instruction: move ``group`` to exactly ``configsets``."""

    group: GroupName
    sequence: Sequence
    digest: Digest
    """The digest of the signed statement: what high-water marks and freshness name."""
    configsets: tuple[ConfigSetRef, ...]
    policy: PolicyRef
    created_at: dt.datetime
    expires_at: dt.datetime
    previous_id: ReleaseId | None = None
    commit: str | None = None
    """The Git commit the Release was built from."""
    state: ReleaseState | None = None
    reason: str | None = None
    created_by: str | None = None

    def __post_init__(self) -> None:
        _check_release(self)

    @property
    def id(self) -> ReleaseId:
        """``<group>-<sequence>-<16 hex of the statement digest>``."""
        return release_id(self.group, self.sequence, self.digest)

    def configset(self, name: str) -> ConfigSetRef | None:
        """The version of ConfigSet ``name`` this Release carries, if any."""
        return next((c for c in self.configsets if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """The Center API's JSON of this Release (``GET /v1/releases``)."""
        return {
            "id": self.id,
            "group": self.group,
            "sequence": self.sequence,
            "digest": self.digest,
            "state": self.state,
            "commit": self.commit,
            "configsets": [c.to_json() for c in self.configsets],
            "policy": self.policy.to_json(),
            "previous_id": self.previous_id,
            "reason": self.reason,
            "created_by": self.created_by,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
        }

    @classmethod
    def from_json(cls, value: object) -> Release:
        """Read :meth:`to_json`'s form; :class:`ValueError` names what is wrong."""
        m = _mapping(value, "release")
        raw_sets = m.get("configsets")
        if not isinstance(raw_sets, list):
            raise ValueError("release.configsets is not a list")
        release = cls(
            group=GroupName(_text(m, "group", "release")),
            sequence=Sequence(_int(m, "sequence", "release", minimum=1)),
            digest=_digest(m, "digest", "release"),
            configsets=tuple(
                ConfigSetRef.from_json(c, f"release.configsets[{i}]")
                for i, c in enumerate(raw_sets)
            ),
            policy=PolicyRef.from_json(m.get("policy"), "release.policy"),
            created_at=_time(m, "created_at"),
            expires_at=_time(m, "expires_at"),
            previous_id=_optional_id(m, "previous_id"),
            commit=_optional_text(m, "commit"),
            state=_optional_text(m, "state"),
            reason=_optional_text(m, "reason"),
            created_by=_optional_text(m, "created_by"),
        )
        if m.get("id") != release.id:
            raise ValueError(f"release.id {m.get('id')!r} is not {release.id!r}")
        return release


def _check_release(r: Release) -> None:
    if not isinstance(r.sequence, int) or isinstance(r.sequence, bool) or r.sequence < 1:
        raise ValueError(f"release sequence {r.sequence!r} is not a positive integer")
    if not is_digest(r.digest):
        raise ValueError(f"release digest {r.digest!r} is not sha256:<hex>")
    names = [c.name for c in r.configsets]
    if not names or names != sorted(set(names)):
        raise ValueError(
            f"{r.group}#{r.sequence}: ConfigSets must be non-empty, sorted, one per name"
        )
    for c in r.configsets:
        if not is_digest(c.digest):
            raise ValueError(f"{r.group}#{r.sequence}: {c.ref} digest is not sha256:<hex>")
    if r.created_at.tzinfo is None or r.expires_at.tzinfo is None:
        raise ValueError(f"{r.group}#{r.sequence}: times must be timezone-aware")
    if r.expires_at <= r.created_at:
        raise ValueError(f"{r.group}#{r.sequence}: expires_at is not after created_at")
    if r.sequence == 1:
        if r.previous_id is not None:
            raise ValueError(f"{r.group}#1 names a previous release")
        return
    parts = None if r.previous_id is None else parse_release_id(r.previous_id)
    if parts is None or parts.group != r.group or parts.sequence >= r.sequence:
        raise ValueError(
            f"{r.group}#{r.sequence}: previous_id {r.previous_id!r} is not an earlier release"
        )


def _iso(when: dt.datetime) -> str:
    """RFC 3339 in UTC with ``Z``, spelt as the Center API spells it."""
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} is not an object")
    return value


def _text(m: Mapping[str, Any], key: str, what: str) -> str:
    value = m.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what}.{key} is not a non-empty string")
    return value


def _optional_text(m: Mapping[str, Any], key: str) -> str | None:
    if key not in m:
        raise ValueError(f"release.{key} is missing")
    value = m[key]
    if value is not None and not isinstance(value, str):
        raise ValueError(f"release.{key} is not a string or null")
    return value


def _optional_id(m: Mapping[str, Any], key: str) -> ReleaseId | None:
    text = _optional_text(m, key)
    return None if text is None else ReleaseId(text)


def _int(m: Mapping[str, Any], key: str, what: str, *, minimum: int) -> int:
    value = m.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{what}.{key} is not an integer >= {minimum}")
    return value


def _digest(m: Mapping[str, Any], key: str, what: str) -> Digest:
    value = m.get(key)
    if not isinstance(value, str) or not is_digest(value):
        raise ValueError(f"{what}.{key} is not a sha256:<hex> digest")
    return Digest(value)


def _time(m: Mapping[str, Any], key: str) -> dt.datetime:
    text = _text(m, key, "release")
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"release.{key} is not an RFC 3339 time") from None
    if when.tzinfo is None or not text.endswith("Z"):
        raise ValueError(f"release.{key} is not a UTC time ending in Z")
    return when
