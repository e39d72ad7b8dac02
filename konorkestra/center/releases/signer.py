"""Build, sign and store Releases: the one path for ingest and for operators.

Example (inside a store transaction)::

    releaser = Releaser(signers=[release_key], source_repo="config-repo")
    row = releaser.insert(conn, ReleasePlan(group="checkout", members=(...), policy=..,
                          source_commit=sha, author="Ana <ana@x>", committed_at=when,
                          created_by="center", origin="ingest"))
    row["sequence"]   # previous sequence of the group + 1

Invariants:

* A group's sequences are 1, 2, 3... with no gaps: the next sequence is read and
  written in one transaction, which the store begins with ``BEGIN IMMEDIATE``
  (SQLite) and which the unique ``(group, sequence)`` constraint backs
  everywhere else.
* Every Release names its predecessor (``previous_id``), is signed by the
  Center's release keys before it is stored, and is audited
  (``release.created``, with who asked) in the same transaction; a Release is
  stored completely with its audit record or not at all.
* The stored ``digest`` is the digest of the signed statement; the stored bundle
  is exactly the bytes that were signed, and never changes afterwards.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from konorkestra.center.store import audit, schema
from konorkestra.center.store.engine import iso, now
from konorkestra.model.canonical import digest_of
from konorkestra.model.types import ConfigSetName, Digest
from konorkestra.trust import (
    ConfigSetRef,
    PolicyRef,
    ReleaseStatement,
    SigningKey,
    Source,
    sign_release,
)
from konorkestra.trust import release_id as trust_release_id

R = schema.releases
RELEASE_TTL = dt.timedelta(days=90)
"""How long a Release statement is valid; freshness statements cover liveness."""


@dataclass(frozen=True)
class Member:
    """One ConfigSet version in a Release."""

    name: str
    version: int
    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Member:
        return cls(
            str(value["name"]), int(value["version"]), str(value["digest"]), int(value["size"])
        )


@dataclass(frozen=True)
class ReleasePlan:
    """What a new Release should say, before it has a sequence or a signature."""

    group: str
    members: tuple[Member, ...]
    policy: Mapping[str, Any]
    """``{"name", "digest", "body"}``: the Policy's canonical form and its digest."""
    source_commit: str
    author: str
    committed_at: dt.datetime
    created_by: str
    origin: str
    reason: str | None = None

    def same_content(self, release: Mapping[str, Any]) -> bool:
        """True when ``release`` (API JSON) moves the group to exactly these members/policy."""
        mine = sorted((m.name, m.version, m.digest) for m in self.members)
        theirs = sorted((c["name"], c["version"], c["digest"]) for c in release["configsets"])
        return mine == theirs and self.policy["digest"] == release["policy"]["digest"]


class Releaser:
    """Signs and stores Releases with the Center's release-role keys."""

    def __init__(
        self,
        signers: Sequence[SigningKey],
        *,
        source_repo: str,
        ttl: dt.timedelta = RELEASE_TTL,
        clock: Callable[[], dt.datetime] = now,
    ) -> None:
        if not signers:
            raise ValueError("a Releaser needs at least one release key")
        self.signers = list(signers)
        self.source_repo = source_repo
        self.ttl = ttl
        self.clock = clock
        self.listeners: list[Callable[[str, int], None]] = []
        """``listener(group, sequence)`` for each committed Release (see :meth:`announce`)."""

    def announce(self, releases: Iterable[Mapping[str, Any]]) -> None:
        """Tell listeners (e.g. parked agent long-polls) about Releases that have committed.

        Call it after the transaction that inserted them commits, never inside it.
        """
        for release in releases:
            for listener in self.listeners:
                try:
                    listener(str(release["group"]), int(release["sequence"]))
                except Exception:
                    logging.getLogger(__name__).exception("release listener failed")

    def latest(self, conn: Connection, group: str) -> Mapping[Any, Any] | None:
        row = conn.execute(
            sa.select(R.c.id, R.c.sequence, R.c.configsets, R.c.policy)
            .where(R.c.group == group)
            .order_by(R.c.sequence.desc())
            .limit(1)
        ).first()
        return None if row is None else row._mapping

    def insert(self, conn: Connection, plan: ReleasePlan) -> dict[str, Any]:
        """Sign and store the next Release of ``plan.group``; returns its API JSON."""
        previous = self.latest(conn, plan.group)
        sequence = 1 if previous is None else int(previous["sequence"]) + 1
        statement = ReleaseStatement.create(
            group=plan.group,
            sequence=sequence,
            configsets=[
                ConfigSetRef(ConfigSetName(m.name), m.version, Digest(m.digest), m.size)
                for m in plan.members
            ],
            policy=PolicyRef(plan.policy["name"], plan.policy["digest"]),
            source=Source(self.source_repo, plan.source_commit, plan.author, plan.committed_at),
            now=self.clock(),
            ttl=self.ttl,
            previous=None if previous is None else str(previous["id"]),
        )
        bundle = sign_release(statement, self.signers)
        statement_digest = digest_of(statement.to_payload())  # one more serialization, not two
        release_id = str(trust_release_id(plan.group, sequence, statement_digest))
        members = [m.to_dict() for m in sorted(plan.members, key=lambda m: m.name)]
        policy = {
            "name": plan.policy["name"],
            "digest": plan.policy["digest"],
            "strategy": plan.policy["body"]["spec"]["strategy"],
            "body": plan.policy["body"],
        }
        row = {
            "id": release_id,
            "group": plan.group,
            "sequence": sequence,
            "bundle": bundle,
            "digest": statement_digest,
            "state": "created",
            "commit": plan.source_commit,
            "configsets": members,
            "policy": policy,
            "previous_id": None if previous is None else str(previous["id"]),
            "reason": plan.reason,
            "created_by": plan.created_by,
            "created_at": statement.created_at,
            "expires_at": statement.expires_at,
        }
        conn.execute(sa.insert(R).values(**row))
        audit.append(
            conn,
            plan.created_by,
            "release.created",
            {
                "release": release_id,
                "group": plan.group,
                "sequence": sequence,
                "origin": plan.origin,
                "commit": plan.source_commit,
                "configsets": [f"{m['name']}@{m['version']}" for m in members],
                "policy": {"name": policy["name"], "digest": policy["digest"]},
                "reason": plan.reason,
            },
        )
        out = {k: v for k, v in row.items() if k != "bundle"}
        out["created_at"], out["expires_at"] = iso(row["created_at"]), iso(row["expires_at"])
        out["policy"] = {k: policy[k] for k in ("name", "digest", "strategy")}
        return out
