"""Agent reports into the store: ``node_reports`` rows, audit events, ``last_seen``.

Example::

    store_reports(engine, [(node_id, parse_report(body))])   # rows written per report
    touch(engine, node_id)                                   # last_seen = now

Invariants:

* One report is stored in one transaction: its rows, the node's ``last_seen``
  and its audit events. :func:`store_reports` stores many nodes' reports in one
  transaction the same way (the Center's
  :class:`~konorkestra.center.agentapi.writer.ReportWriter` batches them).
* Audited (who saw what, kept after ``--report-retention`` prunes the rows):
  each Release the node applied (``node.release_applied``) or refused
  (``node.release_refused``), and each process's ack of a Release:
  ``node.release_acked`` (status ``applied``) or ``node.release_failed`` (a
  failed ack or exec hook), naming the process by pid, exe and start time.
  Within one report a process's repeated ``applied`` ack of one Release is
  audited once (every failed ack is audited, with its error). Deliveries,
  metrics, stale flips and agent errors are not audited: they are operational
  state, and their volume grows with traffic.
* Every row carries the time of the transaction's batch, not the agent's clock
  (the agent's times stay in the row's body).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.agentapi.reports import Report
from konorkestra.center.store import audit, schema
from konorkestra.center.store.engine import now
from konorkestra.model.types import JsonObject

NR = schema.node_reports


def store_reports(
    engine: Engine, reports: Sequence[tuple[str, Report]], *, touched: Collection[str] = ()
) -> list[int]:
    """Store several nodes' reports in one transaction; the rows written per report.

    Also sets ``last_seen`` of every reporting node and of each of ``touched``.
    """
    at = now()
    rows: list[JsonObject] = []
    events: list[audit.Event] = []
    counts = []
    for node_id, report in reports:
        before = len(rows)
        _report_rows(node_id, report, at, rows, events)
        counts.append(len(rows) - before)
    seen = sorted({*(node_id for node_id, _ in reports), *touched})
    with engine.begin() as conn:
        audit.append_many(conn, events)
        if rows:
            conn.execute(sa.insert(NR), rows)
        if seen:
            n = schema.nodes
            conn.execute(sa.update(n).where(n.c.id.in_(seen)).values(last_seen=at))
    return counts


def _report_rows(
    node_id: str,
    report: Report,
    at: dt.datetime,
    rows: list[JsonObject],
    events: list[audit.Event],
) -> None:
    """Append ``report``'s ``node_reports`` rows (bodies are the items' ``to_json()``)
    and its audit events."""
    actor = f"node:{node_id}"

    def row(kind: str, group: str | None, release: str | None, body: JsonObject) -> None:
        rows.append(
            {"node_id": node_id, "group": group, "release_id": release, "kind": kind,
             "body": body, "created_at": at}
        )  # fmt: skip

    for item in report.applied:
        row("applied", item.group, item.release, item.to_json())
        details = {"node": node_id, "group": item.group, "release": item.release,
                   "sequence": item.sequence}  # fmt: skip
        events.append((actor, "node.release_applied", details))
    for ref in report.refused:
        row("refused", ref.group, ref.release, ref.to_json())
        details = {"node": node_id, "group": ref.group, "release": ref.release,
                   "sequence": ref.sequence, "code": ref.code, "reason": ref.reason}  # fmt: skip
        events.append((actor, "node.release_refused", details))
    acked: set[tuple[object, ...]] = set()
    for event in report.events:
        kind = "metric" if event.kind == "report" else event.kind
        row(kind, event.group, event.release, event.to_json())
        if event.kind == "ack":
            proc = event.process
            key = (event.group, event.release, proc.pid, proc.start_time)
            if event.status == "applied":
                if key in acked:
                    continue  # the same process acking the same Release again: audited once
                acked.add(key)
            details = {"node": node_id, "group": event.group, "release": event.release,
                       "process": {"pid": proc.pid, "exe": proc.exe,
                                   "start_time": proc.start_time},
                       "client": event.client, "status": event.status}  # fmt: skip
            if event.status == "applied":
                events.append((actor, "node.release_acked", details))
            else:
                events.append((actor, "node.release_failed", {**details, "error": event.error}))
    for group, flag in sorted(report.stale.items()):
        row("stale", group, None, {"group": group, "stale": flag})
    for error in report.errors:
        row("error", None, None, error.to_json())
    if report.dropped:
        row("dropped", None, None, {"dropped": report.dropped})


def touch(engine: Engine, node_id: str) -> None:
    """Set the node's ``last_seen`` to now."""
    n = schema.nodes
    with engine.begin() as conn:
        conn.execute(sa.update(n).where(n.c.id == node_id).values(last_seen=now()))
