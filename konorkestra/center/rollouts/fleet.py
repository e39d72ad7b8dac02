"""The rollout engine's view of a Group's fleet, read from the store.

Example::

    with reader(engine).connect() as conn:
        fleet = load_fleet(conn, "checkout", new_release_id, since=rollout_started_at)
    decide(state, policy, fleet, now)

What the rows mean is decided by the nodes wing's pure fold
(:func:`konorkestra.center.nodes.fold.fold_node_state`, rules N1–N12) over the
rows this module selects; the engine's guards then read the result
(:mod:`konorkestra.rollout.guards`).

Invariants:

* The fleet is the Group's enrolled nodes: every ``nodes`` row that lists the
  Group and is not revoked, with its labels.
* Only rows that can change a decision are read, in a fixed number of queries
  whatever the number of nodes: ``applied``, ``delivery`` and ``ack`` rows
  naming the rolled-out Release, every ``stale`` row of the Group, and — only
  when a guard reads app metrics (:func:`needs_metrics`) — ``metric`` rows
  stored since the rollout started. At most :data:`MAX_ROWS`, newest first (a
  fleet that reports more is judged on the newest rows). The runner passes a
  :class:`MetricMemory`, so each decision reads only the metric rows stored
  since its last one and keeps the newest per process and metric: a long bake
  with chatty apps does not make every decision read the whole bake again.
* A node *committed* the Release when an ``applied`` row names it; its
  *watchers* are the processes the agent handed the Release to (``delivery``)
  or that acked it; *acks* are each process's newest answer; *metrics* the
  newest value per process and name that carries the agent's time.
* A process id is ``<node>/<pid>@<start time>``: unique across the fleet.
* Read-only: the caller's read connection, no write lock.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from konorkestra.center.nodes.fold import GroupState, ReportRecord, fold_node_state
from konorkestra.center.nodes.records import node_record
from konorkestra.center.nodes.state import report_record
from konorkestra.center.store import schema
from konorkestra.model.definitions import Policy
from konorkestra.model.types import NodeId, ReleaseId
from konorkestra.rollout import Ack, Fleet, Metric, Node, NodeReport, ProcessId
from konorkestra.rollout.inputs import AckOutcome

NR = schema.node_reports
MAX_ROWS = 200_000
"""Report rows read for one decision at most."""
NON_METRIC_SIGNALS = frozenset({"failed_acks", "ack_success_rate", "stale_nodes"})
"""Guards read from acks and staleness, not from app metrics."""
_Row = tuple[str, str, str | None, Any]


def enrolled_nodes(conn: Connection, group: str) -> tuple[Node, ...]:
    """The Group's enrolled (listed, not revoked) nodes with their labels, by id."""
    out = []
    for row in conn.execute(sa.select(schema.nodes).where(schema.nodes.c.revoked_at.is_(None))):
        node = node_record(row)
        if group in node.groups:
            out.append(Node(node.id, dict(node.labels)))
    return tuple(sorted(out, key=lambda n: n.id))


@dataclass
class MetricMemory:
    """The newest ``metric`` row per (node, process, metric) of one rollout, kept between
    decisions so each reads only the rows stored since the last (report ids only grow:
    every write takes the store's one write lock)."""

    release: ReleaseId | None = None
    last_id: int = 0
    rows: dict[tuple[str, object, object, str], _Row] = field(default_factory=dict)

    def read(self, conn: Connection, group: str, release: ReleaseId, since: dt.datetime) -> None:
        if self.release != release:
            self.release, self.last_id, self.rows = release, 0, {}
        found = conn.execute(
            sa.select(NR.c.id, NR.c.node_id, NR.c.kind, NR.c.group, NR.c.body)
            .where(NR.c.group == group, NR.c.kind == "metric", NR.c.created_at >= since,
                   NR.c.id > self.last_id)
            .order_by(NR.c.id)
            .limit(MAX_ROWS)
        ).all()  # fmt: skip
        for row_id, node_id, kind, g, body in found:
            proc = body.get("process") or {}
            key = (node_id, proc.get("pid"), proc.get("start_time"), str(body.get("metric")))
            self.rows[key] = (node_id, kind, g, body)
            self.last_id = max(self.last_id, int(row_id))


def needs_metrics(policy: Policy) -> bool:
    """Whether any guard reads app metrics (``error_rate``, ``latency_p99_ms``, unknown ones)."""
    return any(g.signal not in NON_METRIC_SIGNALS for g in policy.guards)


def fleet_rows(
    group: str, release: ReleaseId, *, since: dt.datetime, metrics: bool
) -> sa.ColumnElement[bool]:
    """Which ``node_reports`` rows :func:`load_fleet` reads (the invariants): those naming
    ``release``, the Group's ``stale`` rows, and its metrics since ``since`` if ``metrics``."""
    kinds = [
        sa.and_(NR.c.kind.in_(("applied", "delivery", "ack")), NR.c.release_id == release),
        NR.c.kind == "stale",
    ]
    if metrics:
        kinds.append(sa.and_(NR.c.kind == "metric", NR.c.created_at >= since))
    return sa.and_(NR.c.group == group, sa.or_(*kinds))


def fold_report(
    node: str, records: list[ReportRecord], group: str, release: ReleaseId
) -> NodeReport | None:
    """One node's records (oldest first) as the engine reads them; None when they say
    nothing of the Group."""
    state = fold_node_state(records, (group,)).group(group)
    return None if state is None else node_report(NodeId(node), state, release)


def load_fleet(
    conn: Connection,
    group: str,
    release: ReleaseId,
    *,
    since: dt.datetime,
    metrics: bool = True,
    memory: MetricMemory | None = None,
) -> Fleet:
    """The Group's nodes and what they reported about ``release``; app metrics stored since
    ``since`` only when ``metrics`` (read incrementally through ``memory`` when given)."""
    nodes = enrolled_nodes(conn, group)
    rows: list[_Row] = [
        (r.node_id, r.kind, r.group, r.body)
        for r in conn.execute(
            sa.select(NR.c.node_id, NR.c.kind, NR.c.group, NR.c.body)
            .where(fleet_rows(group, release, since=since, metrics=metrics and memory is None))
            .order_by(NR.c.id.desc())
            .limit(MAX_ROWS)
        )
    ]
    rows.reverse()  # oldest first, as the fold wants them
    if metrics and memory is not None:
        memory.read(conn, group, release, since)
        rows.extend(memory.rows.values())  # only the newest of each matters to the fold (N10)
    per_node: defaultdict[str, list[ReportRecord]] = defaultdict(list)
    for node_id, kind, g, body in rows:
        per_node[node_id].append(report_record(kind, g, body))
    reports = {}
    for node in nodes:
        records = per_node.get(node.id)
        if records:
            folded = fold_report(node.id, records, group, release)
            if folded is not None:
                reports[node.id] = folded
    return Fleet(nodes, reports)


def node_report(node: NodeId, state: GroupState, release: ReleaseId) -> NodeReport:
    """One node's folded state in the Group as the engine reads it."""
    applied = state.applied
    committed = applied.release if applied is not None and applied.release == release else None
    watchers: set[ProcessId] = set()
    acks: list[Ack] = []
    for proc in state.processes:
        pid = process_id(node, proc.process.pid, proc.process.start_time)
        ack = proc.ack
        if proc.release == release or (ack is not None and ack.release == release):
            watchers.add(pid)
        if ack is not None and ack.release == release and ack.status in ("applied", "failed"):
            at = ack.at or dt.datetime.min.replace(tzinfo=dt.UTC)
            outcome: AckOutcome = "applied" if ack.status == "applied" else "failed"
            acks.append(Ack(pid, ack.release, outcome, at))
    metrics = tuple(
        Metric(process_id(node, m.process.pid, m.process.start_time), m.metric, m.value, m.at)
        for m in state.metrics
        if m.at is not None
    )
    return NodeReport(
        committed=committed,
        committed_at=applied.at if committed is not None and applied is not None else None,
        watchers=frozenset(watchers),
        acks=tuple(acks),
        metrics=metrics,
        stale=bool(state.stale),
    )


def process_id(node: str, pid: int, start_time: int | None) -> ProcessId:
    """``<node>/<pid>@<start time>`` (``@-`` when the agent could not read it)."""
    return ProcessId(f"{node}/{pid}@{'-' if start_time is None else start_time}")
