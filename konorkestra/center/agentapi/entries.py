"""What a desired-state answer is made of, read from the store: the latest Release
of each Group, and an offered Release as the JSON piece the agent receives.

Example::

    latest_rows(engine, {"checkout", "payments"})    # [LatestRow(group, sequence, id, digest)]
    group_targets(engine, {"checkout"})   # [GroupTargets]: per node, what the rollout says
    release_entry(engine, "checkout-4-0123456789abcdef")   # JSON bytes, or None

Invariants:

* Bundles are sent as base64 of the exact stored bytes: the agent verifies the
  bytes that were signed. An offered Release inlines its blobs (ConfigSet blobs,
  then their files) up to :data:`INLINE_MAX` bytes in all, so a small release
  needs no second round trip; the agent checks each against the signed digests
  exactly as a fetched one (ADR 0006). Larger blobs are fetched by digest.
* Read-only: one read connection each, no write lock.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.releases.desired import GroupTargets, LatestRow, targets_of
from konorkestra.center.rollouts.store import current_all, rollout_marks
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.model.types import Digest, GroupName, ReleaseId, Sequence

R = schema.releases


INLINE_MAX = 64 * 1024
"""Bytes of blobs a desired-state answer inlines per offered Release."""


def latest_rows(engine: Engine, groups: Collection[str]) -> list[LatestRow]:
    """The latest Release of each of ``groups`` that has one."""
    if not groups:
        return []
    with reader(engine).connect() as conn:  # read-only: no write lock
        return _latest_rows(conn, groups)


def _latest_rows(conn: Connection, groups: Collection[str]) -> list[LatestRow]:
    top = (
        sa.select(R.c.group, sa.func.max(R.c.sequence).label("seq"))
        .where(R.c.group.in_(list(groups)))
        .group_by(R.c.group)
        .subquery()
    )
    rows = conn.execute(
        sa.select(R.c.group, R.c.sequence, R.c.id, R.c.digest).join(
            top, sa.and_(R.c.group == top.c.group, R.c.sequence == top.c.seq)
        )
    ).all()
    return [
        LatestRow(GroupName(r.group), Sequence(r.sequence), ReleaseId(r.id), Digest(r.digest))
        for r in rows
    ]


def group_targets(
    engine: Engine, groups: Collection[str], memo: TargetsMemo | None = None
) -> list[GroupTargets]:
    """Each of ``groups``' desired state per node: its current rollout's, or its latest
    Release for every node when it has no rollout (one read connection, three queries).

    With ``memo`` (two queries when nothing moved), a Group whose latest Release and
    rollout row (id and revision) are those of the memo's last answer gets that answer
    again, without reading and parsing its rollout's state (at 10,000 nodes, most of a
    load's time)."""
    if not groups:
        return []
    wanted = sorted(set(groups))
    with reader(engine).connect() as conn:
        latest: dict[str, LatestRow] = {r.group: r for r in _latest_rows(conn, wanted)}
        if memo is None:
            return _targets(conn, wanted, latest)
        marks = rollout_marks(conn, wanted)
        keys: dict[str, object] = {g: (latest.get(g), marks.get(g)) for g in wanted}
        held = memo.held(keys)
        fresh = _targets(conn, [g for g in wanted if g not in held], latest)
    memo.store({t.group: (keys[t.group], t) for t in fresh})
    return sorted([*held.values(), *fresh], key=lambda t: t.group)


def _targets(
    conn: Connection, groups: list[str], latest: dict[str, LatestRow]
) -> list[GroupTargets]:
    if not groups:
        return []
    rollouts = current_all(conn, groups)
    named = {
        ref.id
        for row in rollouts.values()
        for ref in (row.state.release, row.state.stable, row.state.rollback)
        if ref is not None
    }
    found = conn.execute(
        sa.select(R.c.group, R.c.sequence, R.c.id, R.c.digest).where(R.c.id.in_(named))
    ).all()
    rows = {
        ReleaseId(r.id): LatestRow(
            GroupName(r.group), Sequence(r.sequence), ReleaseId(r.id), Digest(r.digest)
        )
        for r in found
    }
    out = []
    for name in groups:
        group, row = GroupName(name), rollouts.get(name)
        state = None if row is None else row.state
        out.append(targets_of(group, latest.get(group), state, rows))
    return out


class TargetsMemo:
    """The last :func:`group_targets` answer per Group, by its key (latest Release,
    rollout row id and revision: every write of a rollout row bumps its revision).
    Thread-safe: loads run in worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_group: dict[str, tuple[object, GroupTargets]] = {}

    def held(self, keys: dict[str, object]) -> dict[str, GroupTargets]:
        """The answers held under exactly these keys."""
        with self._lock:
            found = {g: self._by_group.get(g) for g in keys}
        return {g: hit[1] for g, hit in found.items() if hit is not None and hit[0] == keys[g]}

    def store(self, answers: dict[str, tuple[object, GroupTargets]]) -> None:
        with self._lock:
            self._by_group.update(answers)


def release_entry(
    engine: Engine, release_id: ReleaseId, inline_max: int = INLINE_MAX
) -> bytes | None:
    """One offered Release as JSON bytes: its signed bundle and, within ``inline_max``
    bytes, its blobs (ConfigSet blobs first, then the files they name)."""
    b = schema.blobs
    with reader(engine).connect() as conn:  # read-only: no write lock
        row = conn.execute(
            sa.select(
                R.c.group, R.c.sequence, R.c.id, R.c.digest, R.c.bundle, R.c.configsets
            ).where(R.c.id == release_id)
        ).first()
        if row is None:
            return None
        inline: dict[str, bytes] = {}
        budget = inline_max
        wanted = [str(c["digest"]) for c in row.configsets]
        for step in (1, 2):
            found = conn.execute(sa.select(b.c.digest, b.c.data).where(b.c.digest.in_(wanted)))
            data = {r.digest: bytes(r.data) for r in found}
            files: list[str] = []
            for digest in wanted:
                blob = data.get(digest)
                if blob is not None and len(blob) <= budget and digest not in inline:
                    inline[digest] = blob
                    budget -= len(blob)
                if step == 1 and blob is not None:
                    files += sorted(file_digests(blob))
            wanted = [d for d in dict.fromkeys(files) if d not in inline]
    entry = {
        "group": row.group,
        "sequence": row.sequence,
        "id": row.id,
        "digest": row.digest,
        "bundle": base64.b64encode(bytes(row.bundle)).decode("ascii"),
        "blobs": {d: base64.b64encode(v).decode("ascii") for d, v in inline.items()},
    }
    return json.dumps(entry, separators=(",", ":")).encode()


def file_digests(blob: bytes) -> frozenset[str]:
    try:
        files = json.loads(blob)["spec"].get("files", {})
        return frozenset(str(f["digest"]) for f in files.values())
    except (ValueError, KeyError, TypeError, AttributeError):
        return frozenset()
