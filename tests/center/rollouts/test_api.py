"""The rollout routes with a running runner: status, steering, and the errors a client can cause."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from konorkestra.center.app.datadir import Opened
from konorkestra.center.app.factory import create_app
from konorkestra.center.operators.apitokens import Role, create_api_token
from konorkestra.center.rollouts.runner import RolloutRunner
from tests.center.rollouts.rig import T0, Rig, canary
from tests.helpers.errors import assert_error
from tests.helpers.inproc import Api, make_ctx


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def steered(opened: Opened) -> Iterator[tuple[Api, Rig, Clock]]:
    rig = Rig.create(opened, nodes=10, policy=canary(approval="manual"))
    clock = Clock()
    ctx = make_ctx(opened)
    ctx.releaser = rig.releaser
    runner = RolloutRunner(
        opened.engine, rig.releaser, notify=lambda *_: None, clock=clock, metrics=ctx.metrics
    )
    ctx.rollouts, ctx.services = runner, [runner]
    tokens = {"admin": opened.new_admin_token or ""}
    with opened.engine.begin() as conn:
        for role in (Role.VIEWER, Role.OPERATOR):
            tokens[str(role)], _ = create_api_token(conn, role=role, name=f"t-{role}",
                                                    created_by="test")  # fmt: skip
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield Api(client, ctx, opened, tokens), rig, clock


def test_status_and_steering_through_the_api(steered: tuple[Api, Rig, Clock]) -> None:
    api, rig, clock = steered
    assert_error(api.get("/v1/rollouts/checkout"), 404, "not_found")
    first, second = rig.second_rollout()
    body = api.get("/v1/rollouts/checkout").json()
    assert (body["release"]["id"], body["phase"], body["nodes"]["targeted"]) == (
        second.id, "waving", 1,
    )  # fmt: skip
    assert body["history"][0]["release"] == first.id
    assert [r["group"] for r in api.get("/v1/rollouts").json()["rollouts"]] == ["checkout"]

    refused = api.post("/v1/rollouts/checkout/approve", json={"reason": "too early"})
    assert_error(refused, 409, "rollout_conflict")
    assert refused.json()["error"]["details"]["phase"] == "waving"

    clock.now = T0 + dt.timedelta(seconds=3)
    paused = api.post("/v1/rollouts/checkout/pause", json={"reason": "looking"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["phase"] == "paused"
    resumed = api.post("/v1/rollouts/checkout/resume")
    assert resumed.status_code == 200 and resumed.json()["phase"] == "waving"

    promoted = api.post("/v1/rollouts/checkout/promote", json={"reason": "hotfix"})
    assert promoted.status_code == 200 and promoted.json()["phase"] == "completed"
    assert set(rig.desired().values()) == {second.id}
    by_operator = [(action, d["reason"]) for actor, action, d in rig.audit()
                   if actor.startswith("token:t-operator(")]  # fmt: skip
    assert by_operator == [
        ("rollout.paused", "looking"),
        ("rollout.resumed", ""),
        ("rollout.promoted", "hotfix"),
        ("rollout.completed", "hotfix"),
    ]


def test_metrics_show_phase_step_guards_and_decisions(steered: tuple[Api, Rig, Clock]) -> None:
    api, rig, _ = steered
    rig.release(1)
    rig.step(at=0)
    paused = api.post("/v1/rollouts/checkout/pause")  # applied by the runner: one decision
    assert paused.status_code == 200, paused.text
    text = api.get("/metrics").text
    assert 'konorkestra_rollout_phase{group="checkout",phase="paused"} 1.0' in text
    assert 'konorkestra_rollout_phase{group="checkout",phase="waving"} 0.0' in text
    assert 'konorkestra_rollout_step{group="checkout"} 0.0' in text
    assert 'konorkestra_rollout_decisions_total{outcome="changed"}' in text
    assert "konorkestra_rollout_decision_seconds_count" in text


def test_what_a_client_can_get_wrong_is_a_clear_error(steered: tuple[Api, Rig, Clock]) -> None:
    api, rig, _ = steered
    rig.release(1)
    rig.step(at=0)
    assert_error(api.post("/v1/rollouts/checkout/rewind"), 404, "not_found")
    assert_error(api.post("/v1/rollouts/checkout/pause", json={"why": "x"}), 422, "invalid")
    assert_error(api.post("/v1/rollouts/checkout/pause", json={"reason": 5}), 422, "invalid")
    assert_error(api.post("/v1/rollouts/checkout/pause", content=b"{nope"), 400, "bad_request")
    assert_error(api.post("/v1/rollouts/checkout/pause", role="viewer"), 403, "forbidden")
    assert_error(api.post("/v1/rollouts/nosuch/pause"), 404, "not_found")


def test_steering_without_a_runner_is_503(api: Api) -> None:
    assert_error(api.post("/v1/rollouts/checkout/pause"), 503, "unavailable")
