"""The Release statement: an in-toto Statement v1 with a Konorkestra predicate.

Example::

    >>> import datetime as dt
    >>> from konorkestra.model.release import ConfigSetRef, PolicyRef
    >>> from konorkestra.trust.statement import ReleaseStatement, Source
    >>> now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    >>> st = ReleaseStatement.create(
    ...     group="checkout", sequence=1,
    ...     configsets=[ConfigSetRef("checkout-api", 3, "sha256:" + "ab" * 32, 120)],
    ...     policy=PolicyRef("canary", "sha256:" + "cd" * 32),
    ...     source=Source("config-repo", "0" * 40, "Ana <ana@example.org>", now),
    ...     now=now)
    >>> st.release_id().startswith("checkout-1-")
    True
    >>> ReleaseStatement.from_payload(st.to_payload()) == st
    True
    >>> st.release().id == st.release_id()
    True

Payload (canonical JSON)::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "checkout-api@3", "digest": {"sha256": "<hex>"}}],
     "predicateType": "https://konorkestra.io/release/v1",
     "predicate": {"group": "checkout", "sequence": 1,
       "configSets": [{"name": "checkout-api", "version": 3,
                       "digest": "sha256:<hex>", "size": 120}],
       "policy": {"name": "canary", "digest": "sha256:<hex>"},
       "source": {"repo": "config-repo", "commit": "<40 or 64 hex>",
                  "author": "Ana <ana@example.org>", "committedAt": "…Z"},
       "createdAt": "…Z", "expiresAt": "…Z", "previousRelease": null}}

Invariants:

* Subjects are exactly the ConfigSet blob digests, one per ConfigSet, in
  ``configSets`` order, named ``name@version`` (docs/contributing/contracts.md). ConfigSets
  are sorted by name, one version each; ``size`` is the blob length in bytes,
  so an Agent can cap its download before it starts.
* ``sequence`` is per group, at least 1; ``previousRelease`` is null exactly
  for sequence 1, otherwise the id of an earlier release of the same group.
* The release id is ``<group>-<sequence>-<first 16 hex of the statement
  digest>``, where the statement digest is ``digest_of(payload)``. The id names
  a release for people and logs; the verifier compares full digests.
* ``expiresAt`` is after ``createdAt``; all times are whole UTC seconds.
* :meth:`ReleaseStatement.release` is the statement as the shared
  :class:`~konorkestra.model.release.Release`; ConfigSet and Policy references
  are the model's types, and only the fields above are signed (a
  ``PolicyRef.strategy`` never is).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from konorkestra.model.canonical import DIGEST_RE, canonical_bytes, digest_of
from konorkestra.model.release import ConfigSetRef, PolicyRef, Release
from konorkestra.model.releaseid import parse_release_id, release_id
from konorkestra.model.types import (
    ConfigSetName,
    Digest,
    GroupName,
    PolicyName,
    ReleaseId,
    Sequence,
)
from konorkestra.trust.errors import MalformedBundle, SubjectMismatch, WrongPredicateType
from konorkestra.trust.wire import (
    format_time,
    int_field,
    list_field,
    obj,
    parse_canonical,
    parse_time,
    text_field,
)

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
RELEASE_PREDICATE_TYPE = "https://konorkestra.io/release/v1"
DEFAULT_RELEASE_TTL = dt.timedelta(days=90)
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
"""Definition names are DNS labels (same rule as ``konorkestra.model.definitions``)."""
_COMMIT_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_MAX_SEQUENCE = 2**53 - 1


@dataclass(frozen=True)
class Source:
    """Where the release came from in Git."""

    repo: str
    commit: str
    author: str
    committed_at: dt.datetime


@dataclass(frozen=True)
class ReleaseStatement:
    """The signed content of one Release."""

    group: GroupName | str
    sequence: Sequence | int
    configsets: tuple[ConfigSetRef, ...]
    policy: PolicyRef
    source: Source
    created_at: dt.datetime
    expires_at: dt.datetime
    previous: ReleaseId | str | None = None

    @classmethod
    def create(
        cls,
        *,
        group: str,
        sequence: int,
        configsets: Iterable[ConfigSetRef],
        policy: PolicyRef,
        source: Source,
        now: dt.datetime,
        ttl: dt.timedelta = DEFAULT_RELEASE_TTL,
        previous: str | None = None,
    ) -> ReleaseStatement:
        """A checked statement created at ``now`` (whole seconds), expiring after ``ttl``."""
        created = now.astimezone(dt.UTC).replace(microsecond=0)
        statement = cls(
            group=GroupName(group),
            sequence=Sequence(sequence),
            configsets=tuple(sorted(configsets, key=lambda c: c.name)),
            policy=policy,
            source=Source(
                source.repo,
                source.commit,
                source.author,
                source.committed_at.astimezone(dt.UTC).replace(microsecond=0),
            ),
            created_at=created,
            expires_at=created + ttl,
            previous=previous,
        )
        # Build through the parser so the signer can never emit what a verifier refuses.
        return cls.from_payload(statement.to_payload())

    def to_json(self) -> dict[str, Any]:
        """The in-toto Statement as a JSON value."""
        return {
            "_type": STATEMENT_TYPE,
            "subject": [
                {"name": c.ref, "digest": {"sha256": c.digest[7:]}} for c in self.configsets
            ],
            "predicateType": RELEASE_PREDICATE_TYPE,
            "predicate": {
                "group": self.group,
                "sequence": self.sequence,
                "configSets": [
                    {"name": c.name, "version": c.version, "digest": c.digest, "size": c.size}
                    for c in self.configsets
                ],
                "policy": {"name": self.policy.name, "digest": self.policy.digest},
                "source": {
                    "repo": self.source.repo,
                    "commit": self.source.commit,
                    "author": self.source.author,
                    "committedAt": format_time(self.source.committed_at),
                },
                "createdAt": format_time(self.created_at),
                "expiresAt": format_time(self.expires_at),
                "previousRelease": self.previous,
            },
        }

    def to_payload(self) -> bytes:
        """Canonical JSON bytes: the DSSE payload."""
        return canonical_bytes(self.to_json())

    def release_id(self) -> ReleaseId:
        """This release's id (computes the statement digest)."""
        return release_id(self.group, self.sequence, digest_of(self.to_payload()))

    def release(self, digest: Digest | None = None) -> Release:
        """This statement as a :class:`Release`; ``digest`` saves re-serializing if known."""
        return Release(
            group=GroupName(self.group),
            sequence=Sequence(self.sequence),
            digest=digest_of(self.to_payload()) if digest is None else digest,
            configsets=self.configsets,
            policy=self.policy,
            created_at=self.created_at,
            expires_at=self.expires_at,
            previous_id=None if self.previous is None else ReleaseId(self.previous),
            commit=self.source.commit,
        )

    @classmethod
    def from_payload(cls, payload: bytes, *, limit: int = 1 << 20) -> ReleaseStatement:
        """Strictly parse a release statement."""
        subjects, pred = open_statement(payload, RELEASE_PREDICATE_TYPE, limit=limit)
        p = obj(
            pred,
            "predicate",
            {"group", "sequence", "configSets", "policy", "source", "createdAt", "expiresAt",
             "previousRelease"},
        )  # fmt: skip
        group = text_field(p["group"], "predicate.group", NAME_RE)
        sequence = int_field(p["sequence"], "predicate.sequence", minimum=1)
        if sequence > _MAX_SEQUENCE:
            raise MalformedBundle("predicate.sequence is beyond 2**53-1")
        configsets = tuple(
            _configset(c, f"predicate.configSets[{i}]")
            for i, c in enumerate(list_field(p["configSets"], "predicate.configSets"))
        )
        names = [c.name for c in configsets]
        if not names or names != sorted(set(names)):
            raise MalformedBundle("predicate.configSets must be non-empty, sorted, one per name")
        expected = [{"name": c.ref, "digest": {"sha256": c.digest[7:]}} for c in configsets]
        if subjects != expected:
            raise SubjectMismatch("statement subjects differ from predicate.configSets")
        pol = obj(p["policy"], "predicate.policy", {"name", "digest"})
        src = obj(p["source"], "predicate.source", {"repo", "commit", "author", "committedAt"})
        created = parse_time(p["createdAt"], "predicate.createdAt")
        expires = parse_time(p["expiresAt"], "predicate.expiresAt")
        if expires <= created:
            raise MalformedBundle("predicate.expiresAt is not after createdAt")
        previous = p["previousRelease"]
        _check_previous(previous, group, sequence)
        return cls(
            group=GroupName(group),
            sequence=Sequence(sequence),
            configsets=configsets,
            policy=PolicyRef(
                PolicyName(text_field(pol["name"], "predicate.policy.name", NAME_RE)),
                Digest(text_field(pol["digest"], "predicate.policy.digest", DIGEST_RE)),
            ),
            source=Source(
                repo=text_field(src["repo"], "predicate.source.repo"),
                commit=text_field(src["commit"], "predicate.source.commit", _COMMIT_RE),
                author=text_field(src["author"], "predicate.source.author"),
                committed_at=parse_time(src["committedAt"], "predicate.source.committedAt"),
            ),
            created_at=created,
            expires_at=expires,
            previous=None if previous is None else ReleaseId(previous),
        )


def _configset(value: object, what: str) -> ConfigSetRef:
    c = obj(value, what, {"name", "version", "digest", "size"})
    return ConfigSetRef(
        name=ConfigSetName(text_field(c["name"], f"{what}.name", NAME_RE)),
        version=int_field(c["version"], f"{what}.version", minimum=1),
        digest=Digest(text_field(c["digest"], f"{what}.digest", DIGEST_RE)),
        size=int_field(c["size"], f"{what}.size", minimum=0),
    )


def _check_previous(previous: object, group: str, sequence: int) -> None:
    if sequence == 1:
        if previous is not None:
            raise MalformedBundle("predicate.previousRelease must be null for sequence 1")
        return
    if not isinstance(previous, str) or (parts := parse_release_id(previous)) is None:
        raise MalformedBundle("predicate.previousRelease must be a release id after sequence 1")
    if parts.group != group or parts.sequence >= sequence:
        raise MalformedBundle(
            f"predicate.previousRelease {previous!r} is not an earlier release of {group}"
        )


def open_statement(payload: bytes, predicate_type: str, *, limit: int) -> tuple[Any, Any]:
    """Parse an in-toto Statement v1 of ``predicate_type``; return (subjects, predicate)."""
    doc = obj(
        parse_canonical(payload, "statement", limit=limit),
        "statement",
        {"_type", "subject", "predicateType", "predicate"},
    )
    if doc["_type"] != STATEMENT_TYPE:
        raise WrongPredicateType(f"statement _type is {str(doc['_type'])[:80]!r}")
    if doc["predicateType"] != predicate_type:
        raise WrongPredicateType(
            f"predicateType is {str(doc['predicateType'])[:80]!r}, expected {predicate_type}"
        )
    return list_field(doc["subject"], "statement.subject"), doc["predicate"]
