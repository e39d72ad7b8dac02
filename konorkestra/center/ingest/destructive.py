"""Ingest's side of destructive commits: fetch what the pure rule needs, record what it allowed.

Example::

    guard = DeletionCheck.fetch(conn, before=set(previous_states), current=set(groups),
                                message=meta.message)
    diagnostics += guard.diagnostics         # errors refuse the commit
    ...                                      # after the commit is accepted:
    guard.record(conn, meta)                 # one group.deleted audit event per Group

The decision is :func:`konorkestra.repo.deletions.deletion_diagnostics` (rules
D1–D6 there); this module only asks the store and writes the audit trail.

Invariants:

* The store is asked about nodes only when the commit removes a Group, so a
  commit that deletes nothing costs no query. A node counts for a Group when
  it is not revoked and its scope (``nodes.groups``) names the Group.
* Allowed deletions are recorded in the commit's own transaction: one
  ``group.deleted`` audit event per removed Group (actor ``center:ingest``;
  details: group, commit, subject, author, enrolled node count, why it was
  allowed, and the last Release its nodes keep serving). Nothing about a node
  changes: its scope and its desired Release stay as they were.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from konorkestra.center.ingest.gitsource import CommitMeta
from konorkestra.center.store import audit, schema
from konorkestra.model.types import ReleaseId, Sequence
from konorkestra.repo.deletions import TRAILER, AllowDelete, deletion_diagnostics
from konorkestra.repo.diagnostics import Diagnostic


def enrolled_counts(conn: Connection, groups: Collection[str]) -> dict[str, int]:
    """Group -> number of non-revoked nodes whose scope names it (only for ``groups``)."""
    wanted = set(groups)
    counts = dict.fromkeys(sorted(wanted), 0)
    if not wanted:
        return counts
    n = schema.nodes
    for scope in conn.execute(sa.select(n.c.groups).where(n.c.revoked_at.is_(None))).scalars():
        for group in set(scope or ()) & wanted:
            counts[group] += 1
    return counts


def _last_release(conn: Connection, group: str) -> tuple[ReleaseId, Sequence] | None:
    """The id and sequence of ``group``'s newest Release, if it has one."""
    r = schema.releases
    row = conn.execute(
        sa.select(r.c.id, r.c.sequence)
        .where(r.c.group == group)
        .order_by(r.c.sequence.desc())
        .limit(1)
    ).first()
    return None if row is None else (ReleaseId(row.id), Sequence(row.sequence))


def _last_release_json(last: tuple[ReleaseId, Sequence] | None) -> dict[str, object] | None:
    return None if last is None else {"id": last[0], "sequence": last[1]}


@dataclass(frozen=True)
class DeletionCheck:
    """The removed Groups of one commit, their node counts, and the verdict."""

    removed: tuple[str, ...]
    nodes: dict[str, int]
    allowed: AllowDelete
    diagnostics: list[Diagnostic]

    @classmethod
    def fetch(
        cls, conn: Connection, *, before: Collection[str], current: Collection[str], message: str
    ) -> DeletionCheck:
        removed = tuple(sorted(set(before) - set(current)))
        nodes = enrolled_counts(conn, removed)
        allowed = AllowDelete.from_message(message)
        return cls(removed, nodes, allowed, deletion_diagnostics(before, current, nodes, allowed))

    def record(self, conn: Connection, meta: CommitMeta) -> None:
        """One ``group.deleted`` audit event per removed Group (call once accepted)."""
        events = [
            (
                "center:ingest",
                "group.deleted",
                {
                    "group": group,
                    "sha": meta.sha,
                    "subject": meta.subject,
                    "author": meta.author,
                    "nodes": self.nodes.get(group, 0),
                    "allowed_by": TRAILER if self.allowed.covers(group) else "no enrolled node",
                    "last_release": _last_release_json(_last_release(conn, group)),
                },
            )
            for group in self.removed
        ]
        if events:
            audit.append_many(conn, events)
