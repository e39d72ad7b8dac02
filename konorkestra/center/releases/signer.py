"""Build, sign and store Releases: the one path for ingest and for operators.

Example (inside a store transaction)::

    releaser = Releaser(signers=[release_key], source_repo="config-repo")
    release = releaser.insert(conn, ReleasePlan(group="checkout", members=(ConfigSetRef(..),),
                              policy=PolicyRef("canary", digest, "canary"), policy_body=body,
                              source_commit=sha, author="Ana <ana@x>", committed_at=when,
                              created_by="center", origin="ingest"))
    release.sequence   # previous sequence of the group + 1
    releaser.announce([release])                 # after the transaction commits

Invariants:

* A group's sequences are 1, 2, 3... with no gaps: the next sequence is read and
  written in one transaction, which the store begins with ``BEGIN IMMEDIATE``
  (SQLite) and which the unique ``(group, sequence)`` constraint backs
  everywhere else.
* Every Release names its predecessor (``previous_id``), is signed by the
  Center's release keys before it is stored, and is audited
  (``release.created``, with who asked and the key ids of the release-role keys
  that signed it, in signing order) in the same transaction; a Release is
  stored completely with its audit record or not at all.
* The stored ``digest`` is the digest of the signed statement; the stored bundle
  is exactly the bytes that were signed, and never changes afterwards.
* What goes in and comes out are model types (:class:`~konorkestra.model.release.ConfigSetRef`,
  :class:`~konorkestra.model.release.PolicyRef`, :class:`~konorkestra.model.release.Release`);
  the row is written from the Release and read back through
  :func:`~konorkestra.center.releases.rows.release_from_row`, so what
  :meth:`Releaser.insert` returns is what ``/v1/releases`` later shows.
* Every ConfigSet of a plan has a known ``size`` (the blob's length); the
  Policy's strategy shown beside a Release is the one in ``policy_body``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from konorkestra.center.releases.rows import RELEASE_COLUMNS, release_from_row
from konorkestra.center.store import audit, schema
from konorkestra.center.store.engine import now
from konorkestra.model.canonical import digest_of
from konorkestra.model.release import ConfigSetRef, PolicyRef, Release
from konorkestra.model.types import GroupName, JsonObject
from konorkestra.trust import ReleaseStatement, SigningKey, Source, sign_release

R = schema.releases
RELEASE_TTL = dt.timedelta(days=90)
"""How long a Release statement is valid; freshness statements cover liveness."""


@dataclass(frozen=True)
class ReleasePlan:
    """What a new Release should say, before it has a sequence or a signature."""

    group: GroupName
    members: tuple[ConfigSetRef, ...]
    policy: PolicyRef
    """The Policy by name and the digest of ``policy_body``."""
    policy_body: JsonObject
    """The Policy's canonical form (``spec.strategy`` is the strategy the Release shows)."""
    source_commit: str
    author: str
    committed_at: dt.datetime
    created_by: str
    origin: str
    reason: str | None = None

    def same_content(self, release: Release) -> bool:
        """True when ``release`` moves the group to exactly these members and this Policy."""
        mine = sorted((m.name, m.version, m.digest) for m in self.members)
        theirs = sorted((c.name, c.version, c.digest) for c in release.configsets)
        return mine == theirs and self.policy.digest == release.policy.digest


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

    def announce(self, releases: Iterable[Release]) -> None:
        """Tell listeners (e.g. parked agent long-polls) about Releases that have committed.

        Call it after the transaction that inserted them commits, never inside it.
        """
        for release in releases:
            for listener in self.listeners:
                try:
                    listener(release.group, release.sequence)
                except Exception:
                    logging.getLogger(__name__).exception("release listener failed")

    def latest(self, conn: Connection, group: str) -> Release | None:
        """The newest Release of ``group`` in ``conn``'s transaction, if it has one."""
        row = conn.execute(
            sa.select(*RELEASE_COLUMNS)
            .where(R.c.group == group)
            .order_by(R.c.sequence.desc())
            .limit(1)
        ).first()
        return None if row is None else release_from_row(row._mapping)

    def insert(self, conn: Connection, plan: ReleasePlan) -> Release:
        """Sign and store the next Release of ``plan.group``; returns it as stored."""
        unsized = [m.ref for m in plan.members if m.size is None]
        if unsized:
            raise ValueError(f"{plan.group}: no blob size for {', '.join(unsized)}")
        previous = self.latest(conn, plan.group)
        statement = ReleaseStatement.create(
            group=plan.group,
            sequence=1 if previous is None else previous.sequence + 1,
            configsets=plan.members,
            policy=PolicyRef(plan.policy.name, plan.policy.digest),
            source=Source(self.source_repo, plan.source_commit, plan.author, plan.committed_at),
            now=self.clock(),
            ttl=self.ttl,
            previous=None if previous is None else previous.id,
        )
        bundle = sign_release(statement, self.signers)
        statement_digest = digest_of(statement.to_payload())  # one more serialization, not two
        strategy = str(plan.policy_body["spec"]["strategy"])
        release = replace(
            statement.release(statement_digest),
            policy=PolicyRef(plan.policy.name, plan.policy.digest, strategy),
            state="created",
            reason=plan.reason,
            created_by=plan.created_by,
        )
        conn.execute(
            sa.insert(R).values(
                id=release.id,
                group=release.group,
                sequence=release.sequence,
                bundle=bundle,
                digest=release.digest,
                state=release.state,
                commit=release.commit,
                configsets=[c.to_json() for c in release.configsets],
                policy={**release.policy.to_json(), "body": plan.policy_body},
                previous_id=release.previous_id,
                reason=release.reason,
                created_by=release.created_by,
                created_at=release.created_at,
                expires_at=release.expires_at,
            )
        )
        audit.append(
            conn,
            plan.created_by,
            "release.created",
            {
                "release": release.id,
                "group": release.group,
                "sequence": release.sequence,
                "origin": plan.origin,
                "commit": plan.source_commit,
                "configsets": [c.ref for c in release.configsets],
                "policy": {"name": release.policy.name, "digest": release.policy.digest},
                "reason": plan.reason,
                "keys": [signer.keyid for signer in self.signers],
            },
        )
        return release
