"""A node's state read from the store: its newest report rows, folded.

Example::

    node_state(engine, node_id, ["checkout"])["state"]   # per group: applied, processes
    load_node_state(engine, node_id, ["checkout"]).group("checkout").applied

What the rows mean is decided by the pure fold,
:func:`konorkestra.center.nodes.fold.fold_node_state` (rules N1–N12); this
module fetches the rows and turns each into a report record (the store's edge).

Invariants:

* The view folds the newest rows only (:data:`VIEW_ROWS`), oldest first, so
  reading a node stays cheap however long it has been reporting.
* A row's body is what :func:`konorkestra.center.agentapi.reports.parse_report`
  checked before it was stored; its ``kind`` picks the record it becomes, and a
  kind the view does not show still names its Group (rule N2).
* Rows older than the Center's report retention are deleted by
  :mod:`konorkestra.center.store.retention`, except those this view needs.
* Read-only: one read connection, no write lock.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.nodes.fold import (
    AckReport,
    AppliedReport,
    DeliveryReport,
    MetricReport,
    NodeState,
    OtherReport,
    Process,
    RefusedReport,
    ReportRecord,
    StaleReport,
    epoch_time,
    fold_node_state,
)
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.model.types import GroupName, ReleaseId

NR = schema.node_reports


VIEW_ROWS = 5000


def load_node_state(engine: Engine, node_id: str, groups: list[str] | None = None) -> NodeState:
    """The node's state in ``groups`` (and any Group it reported about), from its newest
    :data:`VIEW_ROWS` report rows."""
    with reader(engine).connect() as conn:  # read-only: no write lock
        rows = conn.execute(
            sa.select(NR.c.kind, NR.c.group, NR.c.body)
            .where(NR.c.node_id == node_id)
            .order_by(NR.c.id.desc())
            .limit(VIEW_ROWS)
        ).all()
    records = [report_record(kind, group, body) for kind, group, body in reversed(rows)]
    return fold_node_state(records, groups or ())


def node_state(engine: Engine, node_id: str, groups: list[str] | None = None) -> dict[str, object]:
    """``{"state": [per group: applied release, stale, last refusal, processes]}``."""
    return load_node_state(engine, node_id, groups).to_json()


def report_record(kind: str, group: str | None, body: Mapping[str, object]) -> ReportRecord:
    """One ``node_reports`` row as the fold's record."""
    if group is None:
        return OtherReport(None)
    g = GroupName(group)
    at = epoch_time(body.get("at"))
    if kind == "applied":
        return AppliedReport(g, ReleaseId(_str(body["release"])), _int(body["sequence"]), at)
    if kind == "stale":
        return StaleReport(g, bool(body["stale"]))
    if kind == "refused":
        release, sequence = _opt_str(body.get("release")), _opt_int(body.get("sequence"))
        code, reason = _opt_str(body.get("code")), _opt_str(body.get("reason"))
        return RefusedReport(g, release, sequence, code, reason, at)
    if kind not in ("delivery", "ack", "metric"):
        return OtherReport(g)
    proc = body["process"]
    if not isinstance(proc, Mapping):
        raise ValueError(f"a {kind} report row without a process")
    process = Process(_int(proc["pid"]), _opt_int(proc.get("uid")), _opt_int(proc.get("gid")),
                      _opt_str(proc.get("exe")), _opt_int(proc.get("start_time")))  # fmt: skip
    client = _opt_str(body.get("client"))
    if kind == "delivery":
        return DeliveryReport(g, process, client, ReleaseId(_str(body["release"])),
                              _int(body["sequence"]), _str(body["via"]), at)  # fmt: skip
    if kind == "ack":
        return AckReport(g, process, client, ReleaseId(_str(body["release"])),
                         _str(body["status"]), _opt_str(body.get("error")), at)  # fmt: skip
    value = body["value"]
    if not isinstance(value, int | float):
        raise ValueError(f"a metric report row with value {value!r}")
    return MetricReport(g, process, client, _str(body["metric"]), float(value), at)


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"a report row with {value!r} where a string belongs")
    return value


def _opt_str(value: object) -> str | None:
    return None if value is None else _str(value)


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise ValueError(f"a report row with {value!r} where an integer belongs")
    return value


def _opt_int(value: object) -> int | None:
    return None if value is None else _int(value)
