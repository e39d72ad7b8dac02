"""The API over ingested data: webhook, commits, groups, releases, blobs, manual releases."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from konorkestra.center.app.datadir import Opened
from konorkestra.center.app.factory import create_app
from konorkestra.center.operators.apitokens import Role, create_api_token
from konorkestra.model.canonical import digest_of
from tests.helpers.configrepo import BROKEN_GROUP, payments_common, seeded
from tests.helpers.errors import assert_error
from tests.helpers.git import WorkRepo
from tests.helpers.inproc import Api, make_ctx, with_ingest

pytestmark = pytest.mark.postgresql


@pytest.fixture
def live(opened: Opened, tmp_path: Path) -> Iterator[tuple[Api, WorkRepo]]:
    bare, work = seeded(tmp_path)
    ctx = make_ctx(opened)
    with_ingest(ctx, opened, str(bare))
    tokens = {"admin": opened.new_admin_token or ""}
    with opened.engine.begin() as conn:
        for role in (Role.VIEWER, Role.OPERATOR):
            tokens[str(role)], _ = create_api_token(
                conn, role=role, name=f"t-{role}", created_by="t"
            )
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        api = Api(client, ctx, opened, tokens)
        hook(api)  # the first pass, started by the lifespan, is done after this one
        yield api, work


def hook(api: Api) -> dict[str, object]:
    resp = api.post("/v1/hooks/git?wait=30", json={"refs": []})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["done"] is True and body["ingest"]["last_error"] is None, body
    return body  # type: ignore[no-any-return]


def push(api: Api, work: WorkRepo, message: str, **files: str) -> str:
    for rel, text in files.items():
        work.write(rel, text)
    sha = work.commit(message)
    work.push()
    hook(api)
    return sha


def test_readyz_waits_for_the_first_ingest_pass(live: tuple[Api, WorkRepo]) -> None:
    api, _ = live
    body = api.client.get("/readyz").json()
    assert body["ready"] is True and body["checks"]["git-ingest"] == "ok"


def test_commits_groups_and_releases_after_a_push(live: tuple[Api, WorkRepo]) -> None:
    api, work = live
    commits = api.get("/v1/commits").json()["commits"]
    assert [(c["sha"], c["status"]) for c in commits] == [(work.head(), "accepted")]
    groups = {g["name"]: g for g in api.get("/v1/groups").json()["groups"]}
    assert set(groups) == {"checkout", "payments", "payments-eu"}
    assert groups["payments"]["latest_release"]["sequence"] == 1
    detail = api.get("/v1/groups/checkout").json()
    assert [r["sequence"] for r in detail["releases"]] == [1]
    assert {c["name"] for c in detail["configsets"]} == {"checkout-api", "checkout-flags"}
    assert_error(api.get("/v1/groups/nope"), 404, "not_found")


def test_release_detail_bundle_and_blobs_are_served(live: tuple[Api, WorkRepo]) -> None:
    api, _ = live
    [rel] = api.get("/v1/releases?group=payments").json()["releases"]
    detail = api.get(f"/v1/releases/{rel['id']}").json()
    assert "dsseEnvelope" in detail["bundle"]
    raw = api.get(f"/v1/releases/{rel['id']}/bundle")
    assert raw.status_code == 200 and raw.content.startswith(b"{")
    for cs in rel["configsets"]:
        blob = api.get(f"/v1/blobs/{cs['digest']}")
        assert blob.status_code == 200 and digest_of(blob.content) == cs["digest"]
        assert "immutable" in blob.headers["cache-control"]


def test_a_rejected_push_shows_its_diagnostics_and_keeps_serving(
    live: tuple[Api, WorkRepo],
) -> None:
    api, work = live
    before = api.get("/v1/releases").json()["releases"]
    sha = push(api, work, "broken", **{"groups/broken.yaml": BROKEN_GROUP})
    commit = api.get(f"/v1/commits/{sha[:10]}").json()
    assert commit["status"] == "rejected" and commit["releases"] == []
    [diag] = [d for d in commit["diagnostics"] if d["code"] == "missing-policy"]
    assert diag["file"] == "groups/broken.yaml" and diag["hint"]
    assert api.get("/v1/releases").json()["releases"] == before
    groups = {g["name"] for g in api.get("/v1/groups").json()["groups"]}
    assert "broken" not in groups


def test_operators_roll_back_with_a_new_release(live: tuple[Api, WorkRepo]) -> None:
    api, work = live
    push(api, work, "v2", **{"configsets/payments-common.yaml": payments_common(2, "USD")})
    resp = api.post(
        "/v1/releases",
        json={
            "group": "payments",
            "configsets": ["payments-common@1"],
            "strategy": "all-at-once",
            "reason": "USD broke checkout",
        },
    )
    assert resp.status_code == 201, resp.text
    rel = resp.json()
    assert rel["sequence"] == 3 and rel["configsets"][0]["version"] == 1
    assert (
        rel["created_by"].startswith("token:t-operator(") and rel["reason"] == "USD broke checkout"
    )
    assert rel["policy"]["strategy"] == "all-at-once"
    event = api.get("/v1/audit").json()["events"][-1]
    assert event["action"] == "release.created" and event["actor"] == rel["created_by"]
    assert event["details"]["origin"] == "manual"
    again = api.post(
        "/v1/releases",
        json={"group": "payments", "configsets": ["payments-common@1"], "strategy": "all-at-once"},
    )
    assert_error(again, 409, "conflict")


def test_manual_releases_refuse_what_was_never_accepted(live: tuple[Api, WorkRepo]) -> None:
    api, _ = live
    assert_error(
        api.post("/v1/releases", json={"group": "payments", "configsets": ["payments-common@9"]}),
        404,
        "not_found",
    )
    assert_error(
        api.post("/v1/releases", json={"group": "payments", "configsets": ["checkout-api@1"]}),
        422,
        "invalid",
    )
    assert_error(
        api.post("/v1/releases", json={"group": "ghost", "configsets": ["checkout-api@1"]}),
        404,
        "not_found",
    )
    assert_error(
        api.post(
            "/v1/releases",
            json={"group": "payments", "configsets": ["payments-common@1"], "strategy": "yolo"},
        ),
        422,
        "invalid",
    )


def test_metrics_count_commits_and_releases(live: tuple[Api, WorkRepo]) -> None:
    api, _ = live
    text = api.client.get("/metrics").text
    assert 'konorkestra_center_commits_total{status="accepted"} 1.0' in text
    assert 'konorkestra_center_releases_total{origin="ingest"} 3.0' in text


def test_a_hook_wakes_ingest_at_once_and_its_releases_are_visible_when_it_returns(
    live: tuple[Api, WorkRepo],
) -> None:
    api, work = live  # the poll interval is an hour and there is no watcher
    started = time.monotonic()
    sha = push(api, work, "v2", **{"configsets/payments-common.yaml": payments_common(2, "USD")})
    assert time.monotonic() - started < 10
    commit = api.get(f"/v1/commits/{sha}").json()
    assert commit["status"] == "accepted"
    assert {r["group"] for r in commit["releases"]} == {"payments", "payments-eu"}
