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
  naming the rolled-out Release, every ``stale`` row of the Group, and
  ``metric`` rows stored since the rollout started. At most :data:`MAX_ROWS`,
  newest first (a fleet that reports more is judged on the newest rows).
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

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from konorkestra.center.nodes.fold import GroupState, ReportRecord, fold_node_state
from konorkestra.center.nodes.records import node_record
from konorkestra.center.nodes.state import report_record
from konorkestra.center.store import schema
from konorkestra.model.types import NodeId, ReleaseId
from konorkestra.rollout import Ack, Fleet, Metric, Node, NodeReport, ProcessId
from konorkestra.rollout.inputs import AckOutcome

NR = schema.node_reports
MAX_ROWS = 200_000
"""Report rows read for one decision at most."""


def enrolled_nodes(conn: Connection, group: str) -> tuple[Node, ...]:
    """The Group's enrolled (listed, not revoked) nodes with their labels, by id."""
    out = []
    for row in conn.execute(sa.select(schema.nodes).where(schema.nodes.c.revoked_at.is_(None))):
        node = node_record(row)
        if group in node.groups:
            out.append(Node(node.id, dict(node.labels)))
    return tuple(sorted(out, key=lambda n: n.id))


def load_fleet(conn: Connection, group: str, release: ReleaseId, *, since: dt.datetime) -> Fleet:
    """The Group's nodes and what they reported about ``release`` (metrics since ``since``)."""
    nodes = enrolled_nodes(conn, group)
    wanted = sa.or_(
        sa.and_(NR.c.kind.in_(("applied", "delivery", "ack")), NR.c.release_id == release),
        NR.c.kind == "stale",
        sa.and_(NR.c.kind == "metric", NR.c.created_at >= since),
    )
    rows = conn.execute(
        sa.select(NR.c.node_id, NR.c.kind, NR.c.group, NR.c.body)
        .where(NR.c.group == group, wanted)
        .order_by(NR.c.id.desc())
        .limit(MAX_ROWS)
    ).all()
    per_node: defaultdict[str, list[ReportRecord]] = defaultdict(list)
    for node_id, kind, g, body in reversed(rows):
        per_node[node_id].append(report_record(kind, g, body))
    reports = {}
    for node in nodes:
        records = per_node.get(node.id)
        if records:
            state = fold_node_state(records, (group,)).group(group)
            if state is not None:
                reports[node.id] = node_report(node.id, state, release)
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
