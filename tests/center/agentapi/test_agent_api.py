"""The Center's agent side: desired-state logic, wake-ups, reports, fail-closed routes."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from konorkestra.center.agentapi.cache import LatestCache
from konorkestra.center.agentapi.entries import release_entry
from konorkestra.center.agentapi.notify import ReleaseNotifier
from konorkestra.center.agentapi.reportrows import store_reports
from konorkestra.center.agentapi.reports import parse_report
from konorkestra.center.agentapi.writer import ReportWriter
from konorkestra.center.app.datadir import Opened
from konorkestra.center.app.factory import create_app
from konorkestra.center.nodes.state import node_state
from konorkestra.center.releases.desired import LatestRow, behind, parse_have, parse_wait
from konorkestra.center.store import schema
from konorkestra.center.store.audit import verify_chain
from konorkestra.model.canonical import digest_of
from tests.helpers.inproc import make_ctx

pytestmark = pytest.mark.postgresql

D = "sha256:" + "a" * 64


def test_have_and_behind() -> None:
    assert parse_have("") == {} and parse_have(None) == {}
    have = parse_have("checkout:3,payments:0")
    assert have == {"checkout": 3, "payments": 0}
    rows = [LatestRow("checkout", 3, "c3", D), LatestRow("payments", 1, "p1", D),
            LatestRow("search", 2, "s2", D)]  # fmt: skip
    assert [r.release_id for r in behind(rows, have)] == ["p1", "s2"]
    assert behind([LatestRow("checkout", 2, "c2", D)], have) == []  # node ahead: not offered
    for bad in ("checkout", "Checkout:1", "checkout:-1", "checkout:1,checkout:2", "a:1e3"):
        with pytest.raises(ValueError):
            parse_have(bad)
    assert parse_wait("120") == 55.0 and parse_wait("-3") == 0.0 and parse_wait(None) == 0.0
    with pytest.raises(ValueError):
        parse_wait("nan")


def test_notifier_wakes_a_subscription_from_another_thread() -> None:
    async def main() -> None:
        notifier = ReleaseNotifier()
        await notifier.start()
        with notifier.subscribe({"checkout"}) as sub:
            assert not await sub.wait(0.05)  # nothing yet: times out
            threading.Thread(target=notifier.released, args=("payments", 4)).start()
            assert not await sub.wait(0.2)  # another group does not wake it
            threading.Thread(target=notifier.released, args=("checkout", 7)).start()
            assert await sub.wait(5)
            assert sub.woken_by == [("checkout", 7)]
            # A release between subscribing and waiting is not lost.
            notifier.released("checkout", 8)
            assert await sub.wait(5)
            assert notifier.parked() == 1
        assert notifier.parked() == 0
        await notifier.stop()
        notifier.released("checkout", 9)  # after stop: ignored, no error

    asyncio.run(main())


def test_a_release_of_a_group_its_rollout_decides_runs_the_listeners_but_wakes_nobody() -> None:
    async def main() -> None:
        notifier = ReleaseNotifier()
        await notifier.start()
        heard: list[tuple[str, int]] = []
        notifier.listeners.append(lambda g, s: heard.append((g, s)))
        notifier.settled = lambda group: group == "checkout"
        with notifier.subscribe({"checkout", "payments"}) as sub:
            notifier.released("checkout", 8)  # the rollout decides who gets it: no one yet
            assert not await sub.wait(0.1)
            notifier.released("checkout", 0)  # the runner moved the rollout: wake
            assert await sub.wait(5) and sub.woken_by == [("checkout", 0)]
            notifier.released("payments", 3)  # a Group without a rollout: wake at once
            assert await sub.wait(5)
        assert heard == [("checkout", 8), ("checkout", 0), ("payments", 3)]
        assert notifier.skipped == 1
        await notifier.stop()

    asyncio.run(main())


def test_agent_routes_fail_closed_without_a_client_certificate(opened: Opened) -> None:
    ctx = make_ctx(opened, agent_api=True)
    assert ctx.releaser is not None and ctx.releaser.listeners
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        for method, path in [("GET", "/v1/agent/desired?wait=1"),
                             ("GET", f"/v1/agent/blobs/{D}"),
                             ("POST", "/v1/agent/reports")]:  # fmt: skip
            resp = client.request(method, path, json={} if method == "POST" else None)
            assert resp.status_code == 401, (path, resp.text)
            assert resp.json()["error"]["code"] == "client_certificate_required"


def test_reports_are_stored_audited_and_folded_per_group(opened: Opened) -> None:
    now = dt.datetime.now(dt.UTC)
    with opened.engine.begin() as conn:
        conn.execute(sa.insert(schema.nodes).values(id="n1", name="n1", groups=["checkout"],
                                                    labels={}, created_at=now))  # fmt: skip
    proc = {"pid": 42, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app", "start_time": 7}
    body = {
        "applied": [{"group": "checkout", "release": "checkout-2-x", "sequence": 2,
                     "digest": D, "at": 1.0}],
        "refused": [{"group": "checkout", "release": "checkout-3-y", "sequence": 3,
                     "code": "BadSignature", "reason": "does not verify", "at": 2.0}],
        "events": [
            {"kind": "delivery", "at": 3.0, "group": "checkout", "process": proc,
             "client": "web", "release": "checkout-2-x", "sequence": 2, "via": "watch"},
            {"kind": "ack", "at": 4.0, "group": "checkout", "process": proc, "client": "web",
             "release": "checkout-2-x", "status": "failed", "error": "ValueError: no"},
        ],
        "stale": {"checkout": True},
    }  # fmt: skip
    assert store_reports(opened.engine, [("n1", parse_report(body))]) == [5]
    [group] = node_state(opened.engine, "n1", ["checkout"])["state"]
    assert group["applied"]["release"] == "checkout-2-x" and group["stale"] is True
    assert group["refused"]["code"] == "BadSignature"
    [p] = group["processes"]
    assert (p["pid"], p["exe"], p["release"], p["client"]) == (42, "/usr/bin/app",
                                                               "checkout-2-x", "web")  # fmt: skip
    assert p["ack"]["status"] == "failed" and p["ack"]["error"] == "ValueError: no"
    with opened.engine.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(schema.audit.c.action))]
        last_seen = conn.execute(sa.select(schema.nodes.c.last_seen)).scalar()
    assert {"node.release_applied", "node.release_refused", "node.release_failed"} <= set(actions)
    assert last_seen is not None and verify_chain(opened.engine).ok
    for bad in ({"applied": "x"}, {"events": [{"kind": "other"}]}, {"stale": {"g": "yes"}}):
        with pytest.raises(ValueError):
            parse_report(bad)


def test_each_process_ack_is_audited_once_with_who_acked_what(opened: Opened) -> None:
    """Who saw what outlives report pruning: every process's ack is an audit event,
    written in the report's transaction; deliveries and metrics are not audited."""
    web = {"pid": 42, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app", "start_time": 7}
    worker = {"pid": 43, "uid": 1000, "gid": 1000, "exe": "/usr/bin/worker", "start_time": 9}

    def ack(proc: dict[str, object], status: str, at: float, **extra: object) -> dict[str, object]:
        return {"kind": "ack", "at": at, "group": "checkout", "process": proc,
                "client": "web", "release": "checkout-2-x", "status": status, **extra}  # fmt: skip

    body = {"events": [
        {"kind": "delivery", "at": 1.0, "group": "checkout", "process": web, "client": "web",
         "release": "checkout-2-x", "sequence": 2, "via": "watch"},
        ack(web, "applied", 2.0),
        ack(web, "applied", 3.0),  # the same process acks the same Release again
        ack(worker, "failed", 4.0, error="KeyError: currency"),
        {"kind": "report", "at": 5.0, "group": "checkout", "process": web, "client": "web",
         "metric": "error_rate", "value": 0.0},
    ]}  # fmt: skip
    assert store_reports(opened.engine, [("n1", parse_report(body))]) == [5]
    with opened.engine.connect() as conn:
        rows = conn.execute(sa.select(schema.audit).order_by(schema.audit.c.seq)).all()
    events = [(r.actor, r.action, r.details) for r in rows if r.action.startswith("node.")]
    assert events == [
        ("node:n1", "node.release_acked",
         {"node": "n1", "group": "checkout", "release": "checkout-2-x",
          "process": {"pid": 42, "exe": "/usr/bin/app", "start_time": 7},
          "client": "web", "status": "applied"}),
        ("node:n1", "node.release_failed",
         {"node": "n1", "group": "checkout", "release": "checkout-2-x",
          "process": {"pid": 43, "exe": "/usr/bin/worker", "start_time": 9},
          "client": "web", "status": "failed", "error": "KeyError: currency"}),
    ]  # fmt: skip
    # A later report's ack by a restarted process (same pid, new start time) is new.
    restarted = {**web, "start_time": 8}
    store_reports(
        opened.engine, [("n1", parse_report({"events": [ack(restarted, "applied", 6.0)]}))]
    )
    with opened.engine.connect() as conn:
        acked = (
            conn.execute(
                sa.select(schema.audit.c.details).where(
                    schema.audit.c.action == "node.release_acked"
                )
            )
            .scalars()
            .all()
        )
    assert [a["process"]["start_time"] for a in acked] == [7, 8]
    assert verify_chain(opened.engine).ok


def test_an_offered_release_inlines_its_blobs_within_the_budget(
    opened: Opened, tmp_path: Path
) -> None:
    from konorkestra.center.app.metrics import CenterMetrics
    from konorkestra.center.ingest import build_ingest
    from konorkestra.center.releases.signer import Releaser
    from tests.helpers.configrepo import seeded

    bare, _work = seeded(tmp_path)
    releaser = Releaser([opened.signers["release"]], source_repo="config.git")
    ingest = build_ingest(opened.engine, releaser, CenterMetrics(), repo=str(bare),
                          branch="main", mirror=opened.data.mirror, watch=False)  # fmt: skip
    ingest.run_once()
    with opened.engine.connect() as conn:
        rel = conn.execute(sa.select(schema.releases).where(schema.releases.c.group == "payments"))
        row = rel.one()
    entry = json.loads(release_entry(opened.engine, row.id) or b"")
    assert base64.b64decode(entry["bundle"]) == bytes(row.bundle)
    blobs = {d: base64.b64decode(v) for d, v in entry["blobs"].items()}
    assert {c["digest"] for c in row.configsets} <= set(blobs)  # ConfigSet blobs first
    assert len(blobs) > len(row.configsets)  # ... then the files they name (payments.conf)
    assert all(digest_of(data) == d for d, data in blobs.items())
    assert json.loads(release_entry(opened.engine, row.id, inline_max=0) or b"")["blobs"] == {}
    assert release_entry(opened.engine, "no-such-release") is None


def test_latest_cache_shares_loads_and_never_keeps_a_row_older_than_a_release() -> None:
    async def main() -> None:
        rows = {"checkout": LatestRow("checkout", 1, "c1", D)}
        gate = asyncio.Event()
        loads = []

        async def load(groups: list[str]) -> list[LatestRow]:
            loads.append(groups)
            snapshot = [rows[g] for g in groups if g in rows]
            await gate.wait()
            return snapshot

        cache = LatestCache(load, ttl=60)
        first = [asyncio.create_task(cache.get(["checkout", "payments"])) for _ in range(50)]
        while not loads:
            await asyncio.sleep(0)
        gate.set()
        assert all(r == [rows["checkout"]] for r in await asyncio.gather(*first))
        assert len(loads) == 1  # fifty woken requests, one query
        assert await cache.get(["checkout"]) == [rows["checkout"]] and len(loads) == 1
        # A release commits while a load is in flight: that load's rows are not kept.
        gate.clear()
        cache.invalidate("checkout", 2)
        racing = asyncio.create_task(cache.get(["checkout"]))
        while len(loads) < 2:  # the load has read the store (the old row)
            await asyncio.sleep(0)
        rows["checkout"] = LatestRow("checkout", 2, "c2", D)
        cache.invalidate("checkout", 2)
        woken = asyncio.create_task(cache.get(["checkout"]))  # must not join the old load
        while len(loads) < 3:
            await asyncio.sleep(0)
        gate.set()
        assert await racing == [LatestRow("checkout", 1, "c1", D)]  # its caller gets woken
        assert await woken == [rows["checkout"]]
        assert await cache.get(["checkout"]) == [rows["checkout"]]  # and then reads anew

    asyncio.run(main())


def test_report_writer_stores_a_burst_in_few_transactions(opened: Opened) -> None:
    now = dt.datetime.now(dt.UTC)
    with opened.engine.begin() as conn:
        for i in range(40):
            conn.execute(sa.insert(schema.nodes).values(id=f"n{i}", name=f"n{i}",
                         groups=["checkout"], labels={}, created_at=now))  # fmt: skip

    def report(i: int) -> dict[str, object]:
        return {"applied": [{"group": "checkout", "release": f"checkout-{i}-x", "sequence": i,
                             "digest": D, "at": 1.0}]}  # fmt: skip

    async def main() -> None:
        writer = ReportWriter(opened.engine)
        await writer.start()
        writer.touch("n39")
        stored = await asyncio.gather(
            *(writer.store(f"n{i}", parse_report(report(i + 1))) for i in range(39))
        )
        assert stored == [1] * 39
        assert writer.batches <= 3  # group commit, not one transaction per report
        await writer.stop()

    asyncio.run(main())
    with opened.engine.connect() as conn:
        seen = conn.execute(sa.select(schema.nodes.c.last_seen)).scalars().all()
        applied = conn.execute(
            sa.select(sa.func.count()).where(schema.audit.c.action == "node.release_applied")
        ).scalar()
    assert all(s is not None for s in seen) and applied == 39
    assert verify_chain(opened.engine).ok
    assert node_state(opened.engine, "n7", ["checkout"])["state"][0]["applied"]["sequence"] == 8
