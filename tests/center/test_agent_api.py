"""The Center's agent side: desired-state logic, wake-ups, reports, fail-closed routes."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from konorkestra.center.agentreports import node_state, parse_report, store_report
from konorkestra.center.app import create_app
from konorkestra.center.audit import verify_chain
from konorkestra.center.datadir import Opened
from konorkestra.center.desired import LatestRow, behind, parse_have, parse_wait
from konorkestra.center.notify import ReleaseNotifier
from konorkestra.center.routes.agent import install_agent_api
from konorkestra.center.store import schema
from tests.helpers.inproc import make_ctx

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


def test_agent_routes_fail_closed_without_a_client_certificate(opened: Opened) -> None:
    ctx = make_ctx(opened)
    install_agent_api(ctx, timestamp_signers=[opened.signers["timestamp"]])
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
    assert store_report(opened.engine, "n1", parse_report(body)) == 5
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
