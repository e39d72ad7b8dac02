"""A Release's convergence read from the store: its Group's nodes and their reports, counted.

Example::

    release_convergence(engine, release).to_json()     # GET /v1/releases/{id}: "convergence"
    group_convergence(engine, "checkout")              # the latest Release's, or None
    latest_convergence(engine)                         # every Group's latest: the gauges
    release_nodes(engine, release)                     # and each member's NodeVerdict
    memories = ConvergenceMemories()                   # one per store: the dashboard's
    memories.release_nodes(engine, release)            # the same, reading only new rows

What the rows mean is decided by the pure
:func:`konorkestra.center.releases.convergence.converge` (rules C1–C8) over
each node's state folded by :func:`konorkestra.center.nodes.fold.fold_node_state`;
rows become records through the nodes wing's own edge
(:func:`~konorkestra.center.nodes.records.node_record`,
:func:`~konorkestra.center.nodes.state.report_record`), never a second time here.

Invariants:

* One read connection and a fixed number of queries per Release, whatever the
  number of nodes: the Release's Group's latest sequence, its current rollout,
  every node row, and the Group's report rows (never one query per node).
* Only report rows that can change a count are read: ``applied`` rows naming
  this Release or a newer one of the Group (an older one counts exactly as none,
  C2), ``delivery`` and ``ack`` rows naming this Release (a process handed a
  newer Release is on a node that committed it, which C3 does not target), and
  every ``refused`` and ``stale`` row of the Group (few: agents send them on a
  change). Metrics are never read.
* At most :data:`MAX_ROWS` of them, newest first; when more exist the answer
  is ``partial`` (true in its JSON) and counts from the newest rows only.
* Read-only: no write lock.
* :class:`ConvergenceMemory` answers what :func:`release_nodes` answers for
  the same store state (tested against it over random rounds of reports),
  reading only the report rows stored since its last read and folding only
  their nodes (:class:`~konorkestra.center.rollouts.fleetmemory.ReportRows`:
  checked against pruned or late rows by a count and by their ids every
  :data:`~konorkestra.center.rollouts.fleetmemory.CHECK_AGE` seconds, reloaded in full
  every :data:`~konorkestra.center.rollouts.fleetmemory.RELOAD_AGE`). The members are
  re-read when :func:`~konorkestra.center.rollouts.fleetmemory.node_marks` move; the
  target (latest sequence, the rollout's told nodes) on every read. A new
  Release of the Group makes more ``applied`` rows count: the count check
  reloads then. One lock per memory.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.nodes.fold import NodeState, ReportRecord, fold_node_state
from konorkestra.center.nodes.records import node_record
from konorkestra.center.nodes.state import report_record
from konorkestra.center.releases.convergence import (
    Convergence,
    Member,
    NodeVerdict,
    Target,
    converge,
    judge,
)
from konorkestra.center.releases.queries import latest_releases
from konorkestra.center.rollouts.fleetmemory import (
    Clock,
    Memories,
    ReportRows,
    node_marks,
)
from konorkestra.center.rollouts.store import current as current_rollout
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.model.release import Release
from konorkestra.model.types import GroupName, NodeId
from konorkestra.rollout import desired_of

NR, R = schema.node_reports, schema.releases
MAX_ROWS = 200_000
"""Report rows read for one Release at most (20 per node of a 10,000-node Group)."""


Counted = tuple[Convergence, list[NodeVerdict]]
"""A Release's convergence and each counted member's verdict, by node id."""


def release_convergence(engine: Engine, release: Release) -> Convergence:
    """How far ``release`` has reached its Group."""
    with reader(engine).connect() as conn:
        return _convergence(conn, release, _members(conn, release.group))


def release_nodes(engine: Engine, release: Release) -> Counted:
    """``release``'s convergence and each counted member's verdict, by node id."""
    with reader(engine).connect() as conn:
        members = _members(conn, release.group)
        target = _target(conn, release, members)
        states, partial = _states(conn, release)
    return _counted(target, members, states, partial)


def _counted(
    target: Target, members: list[_NodeRow], states: dict[NodeId, NodeState], partial: bool
) -> Counted:
    counted = converge(target, (m for m, _ in members), states)
    verdicts = (judge(target, m, states.get(m.id)) for m, _ in members)
    return (
        replace(counted, partial=True) if partial else counted,
        sorted((v for v in verdicts if v is not None), key=lambda v: v.node),
    )


def group_convergence(engine: Engine, group: str) -> Convergence | None:
    """The convergence of ``group``'s latest Release; ``None`` if it has none."""
    with reader(engine).connect() as conn:
        latest = latest_releases(conn, group).get(GroupName(group))
        return None if latest is None else _convergence(conn, latest, _members(conn, group))


def latest_convergence(engine: Engine) -> list[Convergence]:
    """The convergence of every Group's latest Release, by Group name (one node read)."""
    with reader(engine).connect() as conn:
        latest = latest_releases(conn)
        members = _all_members(conn)
        return [
            _convergence(conn, latest[g], [m for m in members if g in m[1]]) for g in sorted(latest)
        ]


_NodeRow = tuple[Member, frozenset[str]]


def _all_members(conn: Connection) -> list[_NodeRow]:
    out: list[_NodeRow] = []
    for row in conn.execute(sa.select(schema.nodes)):
        node = node_record(row)
        out.append((Member(node.id, node.revoked_at is not None), frozenset(node.groups)))
    return out


def _members(conn: Connection, group: str) -> list[_NodeRow]:
    return [m for m in _all_members(conn) if group in m[1]]


def _told(conn: Connection, release: Release, members: list[_NodeRow]) -> frozenset[NodeId] | None:
    """The members the Group's current rollout tells to hold ``release`` (None: no rollout)."""
    row = current_rollout(conn, release.group)
    if row is None:
        return None
    told = desired_of(row.state, (m.id for m, _ in members))
    return frozenset(node for node, wanted in told.items() if wanted == release.id)


def _convergence(conn: Connection, release: Release, members: list[_NodeRow]) -> Convergence:
    target = _target(conn, release, members)
    states, partial = _states(conn, release)
    counted = converge(target, (m for m, _ in members), states)
    return replace(counted, partial=True) if partial else counted


def _target(conn: Connection, release: Release, members: list[_NodeRow]) -> Target:
    """What ``release`` is counted against: whether it is the latest, whom it targets."""
    g, seq = release.group, int(release.sequence)
    top = conn.execute(sa.select(sa.func.max(R.c.sequence)).where(R.c.group == g)).scalar()
    return Target(release.id, g, seq, latest=top is None or seq >= int(top),
                  targets=_told(conn, release, members))  # fmt: skip


def convergence_rows(release: Release) -> sa.ColumnElement[bool]:
    """The report rows that can change ``release``'s counts (the invariants)."""
    g, seq = release.group, int(release.sequence)
    current = sa.select(R.c.id).where(R.c.group == g, R.c.sequence >= seq).scalar_subquery()
    wanted = sa.or_(
        sa.and_(NR.c.kind == "applied", NR.c.release_id.in_(current)),
        sa.and_(NR.c.kind.in_(("delivery", "ack")), NR.c.release_id == release.id),
        NR.c.kind.in_(("refused", "stale")),
    )
    return sa.and_(NR.c.group == g, wanted)


def _states(conn: Connection, release: Release) -> tuple[dict[NodeId, NodeState], bool]:
    """Each node's folded state, and whether report rows were left out."""
    rows = conn.execute(
        sa.select(NR.c.node_id, NR.c.kind, NR.c.group, NR.c.body)
        .where(convergence_rows(release))
        .order_by(NR.c.id.desc())
        .limit(MAX_ROWS + 1)
    ).all()
    partial = len(rows) > MAX_ROWS
    per_node: defaultdict[NodeId, list[ReportRecord]] = defaultdict(list)
    for node_id, kind, group, body in reversed(rows[:MAX_ROWS]):
        per_node[NodeId(node_id)].append(report_record(kind, group, body))
    states: dict[NodeId, NodeState] = {
        node: fold_node_state(records, (release.group,)) for node, records in per_node.items()
    }
    return states, partial


class ConvergenceMemory:
    """One Release's :data:`Counted`, read incrementally (the last invariant)."""

    def __init__(self, release: Release, *, clock: Clock = time.monotonic) -> None:
        self.release = release
        self.rows: ReportRows[NodeState] = ReportRows(
            convergence_rows(release), self._fold, limit=MAX_ROWS, clock=clock
        )
        self._lock = threading.Lock()
        self._members: list[_NodeRow] = []
        self._marks: tuple[int, int] | None = None
        self._counted: tuple[tuple[int, tuple[int, int] | None, Target], Counted] | None = None

    def _fold(self, _node: str, records: list[ReportRecord]) -> NodeState:
        return fold_node_state(records, (self.release.group,))

    def counted(self, engine: Engine) -> Counted:
        """What :func:`release_nodes` answers now (read on a connection opened under the
        lock: never an older store state after a newer one)."""
        with self._lock, reader(engine).connect() as conn:
            before = self.rows.reloads
            self.rows.read(conn)
            marks = node_marks(conn)
            if marks != self._marks or self.rows.reloads != before:
                self._members, self._marks = _members(conn, self.release.group), marks
            target = _target(conn, self.release, self._members)
            key = (self.rows.version, self._marks, target)
            if self._counted is not None and self._counted[0] == key:
                return self._counted[1]
            states: dict[NodeId, NodeState] = {}
            for member, _ in self._members:
                state = self.rows.folded(member.id)
                if state is not None:
                    states[member.id] = state
            found = _counted(target, self._members, states, self.rows.overflow)
            self._counted = (key, found)
            return found


class ConvergenceMemories:
    """The :class:`ConvergenceMemory` of each Release read through it (at most ``size``)."""

    def __init__(self, size: int = 32, *, clock: Clock = time.monotonic) -> None:
        self._memories: Memories[str, ConvergenceMemory] = Memories(size)
        self.clock = clock

    def release_nodes(self, engine: Engine, release: Release) -> Counted:
        """:func:`release_nodes`, incrementally."""
        memory = self._memories.get(
            release.id, lambda: ConvergenceMemory(release, clock=self.clock)
        )
        return memory.counted(engine)
