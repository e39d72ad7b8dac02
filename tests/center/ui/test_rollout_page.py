"""The rollout page: waves, transitions with their actors, history, and steering by operators."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from konorkestra.center.rollouts.runner import RolloutRunner
from konorkestra.center.store import schema
from konorkestra.center.ui.rollout_data import transitions
from tests.center.rollouts.rig import T0, Rig, canary
from tests.center.rollouts.test_api import Clock
from tests.center.ui.conftest import Ui
from tests.center.ui.test_overview import tags


@dataclass
class Steering:
    """The dashboard over a Center whose runner (on a test clock) drives ``checkout``
    (manual approval): Release 1 completed, Release 2's first wave baked and awaits
    approval."""

    ui: Ui
    rig: Rig
    first: str
    second: str

    def post(self, command: str, **form: str) -> httpx.Response:
        path = f"/ui/rollouts/checkout/{command}"
        answer: httpx.Response = self.ui.client.post(path, data=form, follow_redirects=False)
        return answer


@pytest.fixture
def steering(ui: Ui) -> Iterator[Steering]:
    rig = Rig.create(ui.opened, nodes=10, policy=canary(approval="manual"))
    clock = Clock()
    ctx = ui.client.app.state.ctx  # type: ignore[attr-defined]
    runner = RolloutRunner(ui.opened.engine, rig.releaser, notify=lambda *_: None, clock=clock)
    portal = ui.client.portal
    assert portal is not None
    portal.call(runner.start)
    ctx.rollouts = runner
    first, second = rig.second_rollout()
    [node] = rig.row().state.targeted
    rig.commit(node, second, ["applied"], at=3)
    rig.step(at=4)
    rig.step(at=70)
    assert rig.row().state.phase == "awaiting_approval"
    clock.now = T0 + dt.timedelta(seconds=71)
    yield Steering(ui, rig, str(first.id), str(second.id))
    portal.call(runner.stop)


def queued(ui: Ui) -> int:
    with ui.opened.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(schema.rollout_commands)
            ).scalar_one()
        )


def notice(answer_location: str) -> str:
    return parse_qs(urlsplit(answer_location).query)["notice"][0]


def test_the_page_shows_phase_waves_transitions_and_history(
    steering: Steering,
) -> None:
    ui = steering.ui
    ui.login("viewer")
    page = ui.client.get("/ui/rollouts/checkout")
    assert page.status_code == 200
    assert "<h1>Rollout of checkout</h1>" in page.text
    [phase] = tags(page.text, "span", id="rollout-phase")
    assert phase["data-phase"] == "awaiting_approval"
    assert tags(page.text, "div", id="rollout-live", hx_get="/ui/rollouts/checkout",
                hx_trigger="sse:changed")  # fmt: skip
    assert [w["data-state"] for w in tags(page.text, "tr") if "data-step" in w] == [
        "current", "pending", "pending",  # status rule V1: awaiting approval of step 2
    ]  # fmt: skip
    actions = [li["data-action"] for li in tags(page.text, "li") if "data-action" in li]
    assert actions[:3] == ["approval.required", "bake.done", "bake.started"]
    assert "wave.started" in actions and "rollout.started" in actions
    assert "release.created" in actions  # names the Group
    assert not any(a.startswith("node.") for a in actions)
    assert [h["data-release"] for h in tags(page.text, "tr") if "data-release" in h] == [
        steering.first
    ]
    assert tags(page.text, "a", href=f"/ui/releases/{steering.second}")
    live = ui.client.get("/ui/rollouts/checkout", headers={"HX-Request": "true"})
    assert live.text.lstrip().startswith('<div id="rollout-live"')


def test_operators_see_the_commands_that_apply_and_viewers_none(
    steering: Steering,
) -> None:
    ui = steering.ui
    ui.login("operator")
    page = ui.client.get("/ui/rollouts/checkout").text
    forms = tags(page, "form", class_="command", method="post")
    assert [f["action"] for f in forms] == [
        f"/ui/rollouts/checkout/{c}" for c in ("approve", "pause", "abort", "promote")
    ]
    assert all(f["data-confirm"] for f in forms)
    buttons = [
        b["data-command"] for b in tags(page, "button", type="submit") if "data-command" in b
    ]
    assert buttons == ["approve", "pause", "abort", "promote"]
    assert len(tags(page, "input", name="reason", type="text")) == 4
    ui.client.cookies.clear()
    ui.login("viewer")
    viewer = ui.client.get("/ui/rollouts/checkout").text
    assert not tags(viewer, "form", class_="command") and "data-command" not in viewer


def test_an_operator_approves_with_a_reason_and_the_audit_names_the_token(
    steering: Steering,
) -> None:
    ui, rig = steering.ui, steering.rig
    csrf = ui.login("operator")
    answer = steering.post("approve", csrf=csrf, reason="canary looks fine")
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith("/ui/rollouts/checkout?notice=")
    assert notice(answer.headers["location"]).startswith("Applied")
    granted = [(actor, d) for actor, action, d in rig.audit() if action == "approval.granted"]
    [(actor, details)] = granted
    assert actor.startswith("token:ui-operator(") and details["reason"] == "canary looks fine"
    page = ui.client.get(answer.headers["location"])
    assert "Applied" in page.text
    assert tags(page.text, "span", id="rollout-phase")[0]["data-phase"] == "waving"
    assert [li for li in tags(page.text, "li") if li.get("data-action") == "approval.granted"]
    assert actor in page.text


def test_a_command_that_cannot_apply_comes_back_refused_with_the_reason(
    steering: Steering,
) -> None:
    ui = steering.ui
    csrf = ui.login("operator")
    answer = steering.post("resume", csrf=csrf, reason="")
    assert answer.status_code == 303
    assert notice(answer.headers["location"]).startswith("Refused: cannot resume")
    assert queued(ui) == 0


def test_a_viewers_forged_post_and_a_post_without_the_form_token_are_403(
    steering: Steering,
) -> None:
    ui, rig = steering.ui, steering.rig
    csrf = ui.login("viewer")
    forged = steering.post("approve", csrf=csrf, reason="x")
    assert forged.status_code == 403 and "operator role" in forged.text
    ui.client.cookies.clear()
    ui.login("operator")
    bare = steering.post("approve", reason="x")
    assert bare.status_code == 403 and "form token" in bare.text
    assert queued(ui) == 0
    assert rig.row().state.phase == "awaiting_approval"


def test_unknown_groups_and_commands_are_404_pages(steering: Steering) -> None:
    ui = steering.ui
    csrf = ui.login("operator")
    for answer in (
        ui.client.get("/ui/rollouts/nosuch"),
        ui.client.post("/ui/rollouts/nosuch/pause", data={"csrf": csrf}, follow_redirects=False),
        steering.post("rewind", csrf=csrf),
    ):
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")
        assert "Not found" in answer.text
    too_long = steering.post("pause", csrf=csrf, reason="x" * 1001)
    assert too_long.status_code == 400 and queued(ui) == 0
    link = ui.client.get("/ui/rollouts/checkout/approve", follow_redirects=False)
    assert link.status_code == 303 and link.headers["location"] == "/ui/rollouts/checkout"
    assert queued(ui) == 0


def test_transitions_are_capped_and_searched_in_a_bounded_window(steering: Steering) -> None:
    engine, ids = steering.ui.opened.engine, [steering.first, steering.second]
    with engine.connect() as conn:
        every, whole = transitions(conn, "checkout", ids)
        newest, _ = transitions(conn, "checkout", ids, limit=3)
        window, searched_all = transitions(conn, "checkout", ids, searched=4)
        top = conn.execute(sa.select(sa.func.max(schema.audit.c.seq))).scalar_one()
    assert whole and [e.seq for e in every] == sorted((e.seq for e in every), reverse=True)
    assert newest == every[:3]
    assert window and not searched_all and all(e.seq > top - 4 for e in window)
    assert window == [e for e in every if e.seq > top - 4]
