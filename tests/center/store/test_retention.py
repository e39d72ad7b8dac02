"""Retention of node reports: old rows go, what ``node_state`` shows stays (both backends)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
import sqlalchemy as sa

from konorkestra.center.agentapi.reportrows import store_reports
from konorkestra.center.agentapi.reports import parse_report
from konorkestra.center.app.datadir import Opened
from konorkestra.center.app.metrics import CenterMetrics
from konorkestra.center.nodes.state import node_state
from konorkestra.center.store import schema
from konorkestra.center.store.retention import BATCH, Pruned, ReportPruner, prune_reports

pytestmark = pytest.mark.postgresql

NR = schema.node_reports
WEEK = dt.timedelta(days=7)
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
"""A ``now`` by which everything a test stored is older than a week."""


def report(opened: Opened, node: str = "n1", **body: Any) -> None:
    store_reports(opened.engine, [(node, parse_report(body))])


def applied(seq: int) -> dict[str, Any]:
    return {"group": "checkout", "release": f"checkout-{seq}-x", "sequence": seq, "at": 1.0}


def metrics(n: int, value: float = 0.01) -> list[dict[str, Any]]:
    proc = {"pid": 9, "uid": 0, "gid": 0}
    return [{"kind": "report", "at": 5.0, "group": "checkout", "process": proc,
             "metric": "error_rate", "value": value} for _ in range(n)]  # fmt: skip


def process_events(pid: int, seq: int, *, ack: bool = True) -> list[dict[str, Any]]:
    proc = {"pid": pid, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app", "start_time": 7}
    release = f"checkout-{seq}-x"
    events = [{"kind": "delivery", "at": 3.0, "group": "checkout", "process": proc,
               "client": "web", "release": release, "sequence": seq, "via": "watch"}]  # fmt: skip
    if ack:
        events.append({"kind": "ack", "at": 4.0, "group": "checkout", "process": proc,
                       "release": release, "status": "applied"})  # fmt: skip
    return events


def kinds(opened: Opened) -> list[tuple[str, Any]]:
    with opened.engine.connect() as conn:
        rows = conn.execute(sa.select(NR.c.kind, NR.c.release_id).order_by(NR.c.id)).all()
    return [(kind, release) for kind, release in rows]


def backdate(opened: Opened, days: int) -> None:
    """Make every row stored so far ``days`` old."""
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with opened.engine.begin() as conn:
        conn.execute(sa.update(NR).values(created_at=old))


def test_old_metrics_and_superseded_rows_go_recent_rows_stay(opened: Opened) -> None:
    report(opened, applied=[applied(3)], events=metrics(3), stale={"checkout": True},
           errors=[{"kind": "sync", "message": "timeout", "at": 1.0}], dropped=2)  # fmt: skip
    report(opened, applied=[applied(4)], events=metrics(1), stale={"checkout": False})
    backdate(opened, days=8)
    report(opened, events=metrics(1, value=0.5))
    result = prune_reports(opened.engine, WEEK)
    assert result == Pruned(deleted=8, kept=2, batches=1)
    assert kinds(opened) == [("applied", "checkout-4-x"), ("stale", None), ("metric", None)]
    [group] = node_state(opened.engine, "n1")["state"]
    assert group["applied"]["sequence"] == 4 and group["stale"] is False


def test_a_quiet_node_still_shows_its_applied_release_and_processes(opened: Opened) -> None:
    # Release 3 reached processes 10 and 11; then release 4 reached 11 and 12 (10 had exited).
    report(opened, applied=[applied(3)], events=process_events(10, 3) + process_events(11, 3))
    report(opened, applied=[applied(4)], events=process_events(11, 4) + process_events(12, 4))
    refused = {"group": "checkout", "release": "checkout-5-x", "sequence": 5,
               "code": "BadSignature", "reason": "does not verify", "at": 6.0}  # fmt: skip
    report(opened, refused=[refused], stale={"checkout": False}, events=metrics(50))
    report(opened, "n2", applied=[applied(4)], events=metrics(5))
    before = node_state(opened.engine, "n1")["state"]

    result = prune_reports(opened.engine, WEEK, now=LATER)

    [after] = node_state(opened.engine, "n1")["state"]
    [was] = before
    assert [p["pid"] for p in was["processes"]] == [10, 11, 12]
    assert after["applied"] == was["applied"] and after["applied"]["sequence"] == 4
    assert after["refused"] == was["refused"] and after["stale"] is False
    assert after["processes"] == was["processes"][1:]  # 11 and 12 unchanged; 10 is gone
    assert all(p["ack"]["release"] == "checkout-4-x" for p in after["processes"])
    assert node_state(opened.engine, "n2")["state"][0]["applied"]["sequence"] == 4
    assert len(kinds(opened)) == result.kept == 8  # n1: applied, refused, stale, 2 x 2; n2
    assert prune_reports(opened.engine, WEEK, now=LATER).deleted == 0  # kept rows stay kept


def test_a_process_that_heard_from_the_center_after_the_apply_stays(opened: Opened) -> None:
    report(opened, applied=[applied(4)])
    report(opened, events=process_events(20, 5, ack=False))  # release 5 not applied (yet)
    prune_reports(opened.engine, WEEK, now=LATER)
    [group] = node_state(opened.engine, "n1")["state"]
    assert [(p["pid"], p["sequence"]) for p in group["processes"]] == [(20, 5)]


def test_more_rows_than_one_batch_are_all_deleted(opened: Opened) -> None:
    for _ in range(3):
        report(opened, events=metrics(2000))
    assert len(kinds(opened)) > BATCH
    assert prune_reports(opened.engine, WEEK, now=LATER) == Pruned(6000, kept=0, batches=2)
    report(opened, events=metrics(7))
    assert prune_reports(opened.engine, WEEK, now=LATER, batch=3) == Pruned(7, 0, batches=3)
    assert kinds(opened) == []


def test_the_pruner_counts_and_logs_a_pass_that_deleted_rows(
    opened: Opened, caplog: pytest.LogCaptureFixture
) -> None:
    center = CenterMetrics()
    pruner = ReportPruner(opened.engine, retention=WEEK, metrics=center)
    report(opened, applied=[applied(4)], events=metrics(4))
    caplog.set_level(logging.INFO, logger="konorkestra.center.store.retention")
    assert pruner.run_once().deleted == 0 and not caplog.records  # nothing a week old yet
    assert pruner.run_once(now=LATER).deleted == 4
    assert pruner.run_once(now=LATER).deleted == 0
    [record] = caplog.records
    assert record.levelno == logging.INFO and "pruned 4 node report rows" in record.getMessage()
    total = center.registry.get_sample_value("konorkestra_center_node_reports_pruned_total")
    assert total == 4


def test_the_center_runs_the_pruner_with_its_retention(tmp_path: Any) -> None:
    from dulwich.repo import Repo

    from konorkestra.center.app.server import build

    Repo.init_bare(tmp_path / "repo", mkdir=True).close()
    built = build(data=tmp_path / "data", repo=str(tmp_path / "repo"), branch="main",
                  watch=False, report_retention=dt.timedelta(hours=2))  # fmt: skip
    try:
        [pruner] = [s for s in built.ctx.services if isinstance(s, ReportPruner)]
        assert pruner.retention == dt.timedelta(hours=2)
    finally:
        built.ctx.engine.dispose()
