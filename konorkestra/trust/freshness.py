"""The freshness statement (timestamp role): "as of now, these are your latest releases".

Example::

    >>> import datetime as dt
    >>> from konorkestra.trust.freshness import FreshnessStatement, LatestRelease
    >>> now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    >>> fs = FreshnessStatement.create(
    ...     node="node-01", now=now,
    ...     latest=[LatestRelease("checkout", 7, "sha256:" + "ab" * 32)])
    >>> fs.expires_at - fs.issued_at
    datetime.timedelta(seconds=300)
    >>> FreshnessStatement.from_payload(fs.to_payload()) == fs
    True

Payload (canonical JSON, in-toto Statement v1)::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "checkout-7-abababababababab", "digest": {"sha256": "<hex>"}}],
     "predicateType": "https://konorkestra.io/freshness/v1",
     "predicate": {"node": "node-01", "issuedAt": "…Z", "expiresAt": "…Z",
                   "groups": [{"group": "checkout", "sequence": 7,
                               "digest": "sha256:<hex>"}]}}

Invariants:

* One entry per group the node is entitled to that has a release, sorted by
  group; ``digest`` is the *statement digest* of that group's latest release.
* Subjects mirror ``groups`` one to one: name = release id, digest = the
  statement digest. A mismatch is a :class:`SubjectMismatch`.
* The expiry is short (:data:`DEFAULT_FRESHNESS_TTL`, five minutes): the
  Center attaches a fresh one to every answer, so an Agent can tell "no news"
  (fresh statement, same sequences) from "withheld news" (a higher sequence
  than delivered) and from a frozen Center or a replaying attacker (stale).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from konorkestra.model.canonical import DIGEST_RE, canonical_bytes
from konorkestra.model.releaseid import release_id
from konorkestra.model.types import Digest, GroupName, NodeId, Sequence
from konorkestra.trust.errors import MalformedBundle, SubjectMismatch
from konorkestra.trust.statement import NAME_RE, open_statement
from konorkestra.trust.wire import (
    format_time,
    int_field,
    list_field,
    obj,
    parse_time,
    text_field,
)

FRESHNESS_PREDICATE_TYPE = "https://konorkestra.io/freshness/v1"
DEFAULT_FRESHNESS_TTL = dt.timedelta(minutes=5)
_NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class LatestRelease:
    """A group's latest release: its sequence and statement digest."""

    group: GroupName | str
    sequence: Sequence | int
    digest: Digest | str


@dataclass(frozen=True)
class FreshnessStatement:
    """The signed content of one freshness statement."""

    node: NodeId | str
    issued_at: dt.datetime
    expires_at: dt.datetime
    latest: tuple[LatestRelease, ...]

    @classmethod
    def create(
        cls,
        *,
        node: str,
        latest: Iterable[LatestRelease],
        now: dt.datetime,
        ttl: dt.timedelta = DEFAULT_FRESHNESS_TTL,
    ) -> FreshnessStatement:
        """A checked statement issued at ``now`` (whole seconds), valid for ``ttl``."""
        issued = now.astimezone(dt.UTC).replace(microsecond=0)
        statement = cls(
            NodeId(node), issued, issued + ttl, tuple(sorted(latest, key=lambda r: r.group))
        )
        return cls.from_payload(statement.to_payload())

    def to_json(self) -> dict[str, Any]:
        """The in-toto Statement as a JSON value."""
        return {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [
                {
                    "name": release_id(r.group, r.sequence, Digest(r.digest)),
                    "digest": {"sha256": r.digest[7:]},
                }
                for r in self.latest
            ],
            "predicateType": FRESHNESS_PREDICATE_TYPE,
            "predicate": {
                "node": self.node,
                "issuedAt": format_time(self.issued_at),
                "expiresAt": format_time(self.expires_at),
                "groups": [
                    {"group": r.group, "sequence": r.sequence, "digest": r.digest}
                    for r in self.latest
                ],
            },
        }

    def to_payload(self) -> bytes:
        """Canonical JSON bytes: the DSSE payload."""
        return canonical_bytes(self.to_json())

    @classmethod
    def from_payload(cls, payload: bytes, *, limit: int = 64 * 1024) -> FreshnessStatement:
        """Strictly parse a freshness statement."""
        subjects, pred = open_statement(payload, FRESHNESS_PREDICATE_TYPE, limit=limit)
        p = obj(pred, "predicate", {"node", "issuedAt", "expiresAt", "groups"})
        latest = []
        for i, raw in enumerate(list_field(p["groups"], "predicate.groups")):
            what = f"predicate.groups[{i}]"
            g = obj(raw, what, {"group", "sequence", "digest"})
            latest.append(
                LatestRelease(
                    GroupName(text_field(g["group"], f"{what}.group", NAME_RE)),
                    Sequence(int_field(g["sequence"], f"{what}.sequence", minimum=1)),
                    Digest(text_field(g["digest"], f"{what}.digest", DIGEST_RE)),
                )
            )
        groups = [r.group for r in latest]
        if groups != sorted(set(groups)):
            raise MalformedBundle("predicate.groups must be sorted, one entry per group")
        expected = [
            {
                "name": release_id(r.group, r.sequence, Digest(r.digest)),
                "digest": {"sha256": r.digest[7:]},
            }
            for r in latest
        ]
        if subjects != expected:
            raise SubjectMismatch("statement subjects differ from predicate.groups")
        issued = parse_time(p["issuedAt"], "predicate.issuedAt")
        expires = parse_time(p["expiresAt"], "predicate.expiresAt")
        if expires <= issued:
            raise MalformedBundle("predicate.expiresAt is not after issuedAt")
        node = NodeId(text_field(p["node"], "predicate.node", _NODE_RE))
        return cls(node, issued, expires, tuple(latest))
