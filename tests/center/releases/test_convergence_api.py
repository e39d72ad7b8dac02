"""Convergence through the API: real store, reports stored by the real report path."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from konorkestra.center.agentapi.reportrows import store_reports
from konorkestra.center.agentapi.reports import parse_report
from konorkestra.center.releases import convergence_store
from konorkestra.center.releases.signer import Releaser
from konorkestra.center.store import schema
from konorkestra.center.store.engine import now
from konorkestra.model.release import Release
from tests.center.releases.test_releases import SHA, plan
from tests.helpers.inproc import Api

pytestmark = pytest.mark.postgresql

D = "sha256:" + "a" * 64


def release(api: Api, version: int) -> Release:
    releaser = Releaser([api.opened.signers["release"]], source_repo="test-repo")
    with api.opened.engine.begin() as conn:
        return releaser.insert(conn, plan("checkout", version))


def report(api: Api, node: str, r: Release, acks: list[tuple[int, str]]) -> None:
    events: list[dict[str, Any]] = []
    for pid, status in acks:
        proc = {"pid": pid, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app", "start_time": 1}
        common = {"group": "checkout", "process": proc, "client": "web", "release": r.id}
        events.append({"kind": "delivery", "at": 3.0, **common, "sequence": r.sequence,
                       "via": "watch"})  # fmt: skip
        events.append({"kind": "ack", "at": 4.0, **common, "status": status, "error": None})
    body = {"applied": [{"group": "checkout", "release": r.id, "sequence": r.sequence,
                         "digest": D, "at": 1.0}], "events": events}  # fmt: skip
    store_reports(api.opened.engine, [(node, parse_report(body))])


def setup(api: Api) -> tuple[Release, Release]:
    with api.opened.engine.begin() as conn:
        conn.execute(sa.insert(schema.commits).values(
            sha=SHA, parent=None, branch="main", author="Ana", subject="s", status="accepted",
            diagnostics=[], committed_at=now(), ingested_at=now() + dt.timedelta(seconds=1),
        ))  # fmt: skip
        for n, groups, revoked in (
            ("n1", ["checkout"], None),
            ("n2", ["checkout"], None),
            ("n3", ["checkout", "search"], None),
            ("gone", ["checkout"], now()),
            ("other", ["search"], None),
        ):
            row = {"id": n, "name": n, "groups": groups, "labels": {}, "revoked_at": revoked}
            conn.execute(sa.insert(schema.nodes).values(**row, created_at=now()))
    first, second = release(api, 1), release(api, 2)
    report(api, "n1", first, [(10, "applied")])
    report(api, "n1", second, [(10, "applied"), (11, "failed")])
    report(api, "n2", second, [(20, "applied")])
    report(api, "n3", first, [(30, "applied")])  # still on the first: behind
    report(api, "gone", second, [(40, "failed")])  # revoked: counted nowhere
    return first, second


def test_a_release_and_its_group_answer_their_convergence(api: Api) -> None:
    first, second = setup(api)
    shown = api.get(f"/v1/releases/{second.id}").json()
    assert shown["id"] == second.id and "bundle" in shown  # existing fields kept
    conv = shown["convergence"]
    assert conv["latest"] is True and conv["partial"] is False
    assert conv["nodes"] == {"targeted": 3, "committed": 2, "behind": 1, "newer": 0,
                             "refused": 0, "stale": 0, "failed": 1}  # fmt: skip
    assert conv["processes"] == {"delivered": 3, "applied": 2, "failed": 1}
    old = api.get(f"/v1/releases/{first.id}").json()["convergence"]
    assert old["latest"] is False
    assert (old["nodes"]["targeted"], old["nodes"]["committed"], old["nodes"]["newer"]) == (
        1, 1, 2)  # fmt: skip
    assert old["processes"]["applied"] == 1  # n3's process; n1's moved on
    group = api.get("/v1/groups/checkout").json()
    assert group["convergence"] == conv and group["name"] == "checkout"
    [latest] = convergence_store.latest_convergence(api.opened.engine)
    assert latest.to_json() == conv


def test_the_gauges_count_each_groups_latest_release(api: Api) -> None:
    setup(api)
    text = api.client.get("/metrics").text
    assert 'konorkestra_rollout_nodes{group="checkout",state="committed"} 2.0' in text
    assert 'konorkestra_rollout_nodes{group="checkout",state="behind"} 1.0' in text
    assert 'konorkestra_rollout_processes{ack="failed",group="checkout"} 1.0' in text


def test_a_read_past_max_rows_says_it_is_partial(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    _, second = setup(api)
    monkeypatch.setattr(convergence_store, "MAX_ROWS", 2)
    conv = convergence_store.release_convergence(api.opened.engine, second)
    assert conv.partial and conv.to_json()["partial"] is True
