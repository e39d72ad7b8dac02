"""A Group's fleet kept in memory between reads: one new report costs one node's fold.

Example::

    memories = FleetMemories()                  # one per store (the dashboard: shared())
    fleet = memories.fleet(engine, "checkout", release_id, since=started_at, metrics=False)
    # == load_fleet(conn, "checkout", release_id, since=started_at, metrics=False)

:class:`ReportRows` is the mechanism, also used for a Release's convergence
(:class:`konorkestra.center.releases.convergence_store.ConvergenceMemory`): the
report rows one filter selects, per node, each node's rows folded once per change.

Invariants:

1. Equal: :meth:`FleetMemory.fleet` returns what
   :func:`~konorkestra.center.rollouts.fleet.load_fleet` returns for the same
   store state (tested against it over random rounds of reports,
   ``tests/center/rollouts/test_fleetmemory.py``). The rows are the same
   filter's (:func:`~konorkestra.center.rollouts.fleet.fleet_rows`), folded by
   the same :func:`~konorkestra.center.rollouts.fleet.fold_report`.
2. Incremental: a read fetches only the rows with an ``id`` above the highest
   one held (ids only grow: every write holds the store's one write lock),
   appends them to their nodes' records (oldest first, as the fold wants) and
   re-folds only those nodes, when the fleet is next built.
3. Checked: each read first counts the filter's rows up to that ``id``; a count
   other than the rows held means rows were pruned by report retention, or
   committed late: the memory reloads in full. Every :data:`CHECK_AGE` seconds
   the read compares the ids themselves (one query of integers, no body): a
   different set reloads too, so rows pruned and others committed late in equal
   number are caught within that time (rows are never updated, only inserted
   and pruned: equal ids, equal rows). And
   every :data:`RELOAD_AGE` seconds, when it would hold more than its limit
   (the newest ``limit`` rows are then re-read every time, as ``load_fleet``
   does), or when it has never read, it reloads in full, enrolled nodes
   included: nothing it holds is older than that.
4. The enrolled nodes are re-read only when :func:`node_marks` move: ``nodes``
   rows are never deleted, only inserted (enrollment) and revoked (once);
   their Groups and labels never change after the insert. (Not the audit
   ``seq``: agents' acks move it all the time, and seeding tools insert nodes
   without an audit record.)
5. Thread-safe: a memory's lock is held for a whole read, which opens its own
   read connection under it: reads see the store in the order they take the
   lock, never an older state after a newer one (a page's older snapshot
   would look like pruned rows and cost a reload). The registries' own lock
   is held only to find or make a memory, at most ``size`` of them (the least
   recently used goes first).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.nodes.fold import ReportRecord
from konorkestra.center.nodes.state import report_record
from konorkestra.center.rollouts.fleet import (
    MAX_ROWS,
    enrolled_nodes,
    fleet_rows,
    fold_report,
)
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.model.types import NodeId, ReleaseId
from konorkestra.rollout import Fleet, Node, NodeReport

NR, N = schema.node_reports, schema.nodes
CHECK_AGE = 30.0
"""Seconds between two comparisons of the ids held with the store's (invariant 3)."""
RELOAD_AGE = 600.0
"""Seconds a memory is trusted before it reloads in full (invariant 3). Not every 30 s:
a full read of a 1,000-node Group is what a page must not pay (issue 16)."""
Clock = Callable[[], float]
_Raw = tuple[str, str | None, str]
"""A row as held: kind, Group, body (JSON text)."""
_COLUMNS = (NR.c.id, NR.c.node_id, NR.c.kind, NR.c.group, sa.cast(NR.c.body, sa.Text))
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
M = TypeVar("M")


def node_marks(conn: Connection) -> tuple[int, int]:
    """Node rows and revoked node rows: equal marks, equal enrolled nodes (invariant 4)."""
    row = conn.execute(sa.select(sa.func.count(), sa.func.count(N.c.revoked_at))).one()
    return int(row[0]), int(row[1])


class ReportRows(Generic[T]):
    """The rows ``where`` selects (newest ``limit`` at most), per node, each node's records
    folded by ``fold(node, records)`` when asked (invariants 2-3). Not locked itself: its
    owner's lock guards it."""

    def __init__(
        self,
        where: sa.ColumnElement[bool],
        fold: Callable[[str, list[ReportRecord]], T],
        *,
        limit: int = MAX_ROWS,
        clock: Clock = time.monotonic,
    ) -> None:
        self.where, self.fold, self.limit, self.clock = where, fold, limit, clock
        self.version = 0
        """Grows with every change of the rows held."""
        self.reloads = 0
        self.overflow = False
        """More rows than ``limit`` matched: only the newest are held."""
        self._loaded_at: float | None = None
        self._checked_at = 0.0
        self._last_id = 0
        self._ids: list[int] = []
        """The ids held, ascending."""
        self._rows: dict[str, list[_Raw]] = {}
        """Per node, its rows oldest first, bodies as the store's JSON text: tuples of
        strings, which the garbage collector does not track (a page's pause stays short)."""
        self._folded: dict[str, T] = {}

    def read(self, conn: Connection) -> bool:
        """Catch up with the store (invariants 2-3); whether anything changed."""
        at = self.clock()
        if self._loaded_at is None or at - self._loaded_at > RELOAD_AGE or self.overflow:
            return self._reload(conn)
        upto = sa.and_(self.where, NR.c.id <= self._last_id)
        if at - self._checked_at > CHECK_AGE:
            ids = conn.execute(sa.select(NR.c.id).where(upto).order_by(NR.c.id)).scalars()
            if [int(i) for i in ids] != self._ids:
                return self._reload(conn)
            self._checked_at = at
        elif conn.execute(sa.select(sa.func.count()).where(upto)).scalar() != len(self._ids):
            return self._reload(conn)
        new = conn.execute(
            sa.select(*_COLUMNS)
            .where(self.where, NR.c.id > self._last_id)
            .order_by(NR.c.id)
            .limit(self.limit - len(self._ids) + 1)
        ).all()
        if len(self._ids) + len(new) > self.limit:
            return self._reload(conn)
        for row_id, node, kind, group, body in new:
            self._add(int(row_id), node, (kind, group, body))
        if new:
            self.version += 1
        return bool(new)

    def _reload(self, conn: Connection) -> bool:
        self._rows, self._folded, self._last_id, self._ids = {}, {}, 0, []
        rows = conn.execute(
            sa.select(*_COLUMNS).where(self.where).order_by(NR.c.id.desc()).limit(self.limit + 1)
        ).all()
        self.overflow = len(rows) > self.limit
        for row_id, node, kind, group, body in reversed(rows[: self.limit]):
            self._add(int(row_id), node, (kind, group, body))
        self._loaded_at = self._checked_at = self.clock()
        self.reloads += 1
        self.version += 1
        return True

    def _add(self, row_id: int, node: str, row: _Raw) -> None:
        self._rows.setdefault(node, []).append(row)
        self._folded.pop(node, None)
        self._last_id = row_id  # rows come oldest first
        self._ids.append(row_id)

    def folded(self, node: str) -> T | None:
        """``node``'s records folded (once per change); None when it has no row."""
        if node in self._folded:
            return self._folded[node]
        rows = self._rows.get(node)
        if not rows:
            return None
        records = [report_record(kind, group, json.loads(body)) for kind, group, body in rows]
        found = self._folded[node] = self.fold(node, records)
        return found


class FleetMemory:
    """One Group's fleet for one Release (invariants 1-5)."""

    def __init__(
        self,
        group: str,
        release: ReleaseId,
        *,
        since: dt.datetime,
        metrics: bool,
        clock: Clock = time.monotonic,
    ) -> None:
        self.group, self.release = group, release
        where = fleet_rows(group, release, since=since, metrics=metrics)
        self.rows: ReportRows[NodeReport | None] = ReportRows(where, self._fold, clock=clock)
        self._lock = threading.Lock()
        self._nodes: tuple[Node, ...] = ()
        self._marks: tuple[int, int] | None = None
        self._built: tuple[tuple[int, tuple[int, int] | None], Fleet] | None = None

    def _fold(self, node: str, records: list[ReportRecord]) -> NodeReport | None:
        return fold_report(node, records, self.group, self.release)

    def fleet(self, engine: Engine) -> Fleet:
        """The fleet as :func:`~konorkestra.center.rollouts.fleet.load_fleet` reads it now."""
        with self._lock, reader(engine).connect() as conn:
            before = self.rows.reloads
            self.rows.read(conn)
            marks = node_marks(conn)
            if marks != self._marks or self.rows.reloads != before:  # re-read with the rows
                self._nodes, self._marks = enrolled_nodes(conn, self.group), marks
            key = (self.rows.version, self._marks)
            if self._built is not None and self._built[0] == key:
                return self._built[1]
            reports: dict[NodeId, NodeReport] = {}
            for node in self._nodes:
                folded = self.rows.folded(node.id)
                if folded is not None:
                    reports[node.id] = folded
            fleet = Fleet(self._nodes, reports)
            self._built = (key, fleet)
            return fleet


class Memories(Generic[K, M]):
    """At most ``size`` memories by key, the least recently used dropped first (invariant 5)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._found: OrderedDict[K, M] = OrderedDict()

    def get(self, key: K, make: Callable[[], M]) -> M:
        """The memory for ``key``, made by ``make`` if there is none."""
        with self._lock:
            found = self._found.get(key)
            if found is None:
                found = self._found[key] = make()
                while len(self._found) > self.size:
                    self._found.popitem(last=False)
            self._found.move_to_end(key)
            return found


class FleetMemories:
    """The :class:`FleetMemory` of each ``(group, release, metrics since)`` read through it."""

    def __init__(self, size: int = 64, *, clock: Clock = time.monotonic) -> None:
        self._memories: Memories[tuple[str, str, dt.datetime | None], FleetMemory] = Memories(size)
        self.clock = clock

    def fleet(
        self,
        engine: Engine,
        group: str,
        release: ReleaseId,
        *,
        since: dt.datetime,
        metrics: bool = True,
    ) -> Fleet:
        """:func:`~konorkestra.center.rollouts.fleet.load_fleet` (without a ``MetricMemory``),
        incrementally (invariants 1-3)."""
        key = (group, str(release), since if metrics else None)
        memory = self._memories.get(
            key,
            lambda: FleetMemory(group, release, since=since, metrics=metrics, clock=self.clock),
        )
        return memory.fleet(engine)
