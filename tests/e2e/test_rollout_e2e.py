"""Progressive rollouts end to end: waves, automatic rollback, operator control, supersede.

One real fleet per module (:mod:`tests.e2e.rolloutfleet`): a ``konorkestra center``,
ten ``konorkestra agent run`` processes in ``checkout`` and the checkout app (the
Python SDK) on the canary node, a node of the 50 % wave and a node of the last wave.
Each test commits its own Policy (10 % / 50 % / 100 %, bakes of seconds, guards
``failed_acks`` 0 and ``ack_success_rate`` 1) with its change, and starts once the
previous test's rollout has ended, so the tests do not depend on each other's order.

What is checked, per issue 14's "Done when" and docs/guide/rollouts.md:

* (a) canary → bake → 50 % → 100 %: at every wave the API's node counts, and the
  agents' own committed Releases: exactly the wave's nodes (rule W2's order, computed
  here) have the new Release; a sampler never sees more than the step allows.
* (b) a Release whose reload raises in the canary's app is rolled back by a new
  Release; no node outside the canary wave committed, was handed or acked it.
* (c) ``approval: manual`` holds until ``konorctl rollout approve``; pause stops
  waves and clocks, resume continues with the bake time left, abort rolls back.
* (e) a second commit mid-rollout supersedes the first (S5).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from konorkestra.demo.procs import wait_until
from tests.e2e.rolloutfleet import (
    NODES,
    WAIT,
    Fleet,
    Observer,
    assert_in_order,
    assert_within_steps,
    at,
    names,
    open_fleet,
    policy,
    rollout_events,
    steady_wave,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with open_fleet(tmp_path_factory.mktemp("rollout")) as running:
        yield running


@pytest.fixture
def ready(fleet: Fleet) -> Fleet:
    """The fleet with no rollout running (a failed test may have left one: abort it)."""
    if fleet.status()["phase"] not in ("completed", "rolled_back", "aborted"):
        fleet.steer("abort", "a previous test left this rollout running")
    fleet.settle()
    return fleet


def who_saw(fleet: Fleet, mark: int, release: str) -> set[str]:
    """Node ids with a ``node.*`` audit event (applied, failed, refused) about ``release``, or
    a process that ``GET /v1/nodes/{id}`` says was handed or acked it."""
    about = (e for e in fleet.audit(mark) if e["details"].get("release") == release)
    saw = {e["details"]["node"] for e in about if e["action"].startswith("node.")}
    for agent in fleet.agents:
        for proc in fleet.node_processes(agent):
            if release in (proc["release"], (proc["ack"] or {}).get("release")):
                saw.add(agent.node_id)
    return saw


def test_canary_bake_half_then_all_with_node_counts_at_every_wave(ready: Fleet) -> None:
    fleet = ready
    mark = fleet.audit_mark()
    old = fleet.status()["release"]["sequence"] if fleet.status()["phase"] == "completed" else None
    with Observer(fleet) as obs:
        new = fleet.release("(a) canary to all", policy(bakes=(2, 2)))
        seq = new["sequence"]
        for step, added in ((0, 1), (1, 4)):
            st, on = steady_wave(fleet, seq, step, "baking")
            assert on == names(fleet.wave(step)), f"step {step}: {sorted(on)}"
            assert st["nodes"] == {
                "enrolled": NODES,
                "targeted": len(on),
                "stable": NODES - len(on),
            }
            assert [w["state"] for w in st["waves"]] == [
                "done" if i < step else "current" if i == step else "pending" for i in range(3)
            ]
            assert [w["nodes"] for w in st["waves"]] == [1, 4, 5]
            wave = st["waves"][step]
            apps = [a for a in fleet.wave(step)[-added:] if a.name in fleet.apps]
            assert (wave["committed"], wave["applied"], wave["failed"]) == (added, len(apps), 0)
            assert 0 < st["bake_left_seconds"] <= 2
            assert {g["status"] for g in st["guards"]} == {"pass"}
        done = fleet.wait_status(
            lambda s: s["release"]["sequence"] == seq and s["phase"] == "completed",
            "(a) to complete",
        )
    assert done["nodes"] == {"enrolled": NODES, "targeted": NODES, "stable": 0}
    assert [(w["state"], w["committed"]) for w in done["waves"]] == [
        ("done", 1),
        ("done", 4),
        ("done", 5),
    ]
    fleet.wait_on(seq, names(fleet.agents), "every node on the new Release")
    assert_within_steps(obs, fleet, seq)

    events = rollout_events(fleet, mark, new["id"])
    waves = [(e["details"]["step"], set(e["details"]["nodes"])) for e in events
             if e["action"] == "wave.started"]  # fmt: skip
    ids = [a.node_id for a in fleet.agents]
    assert waves == [(0, set(ids[:1])), (1, set(ids[1:5])), (2, set(ids[5:]))]
    kinds = [e["action"] for e in events]
    assert kinds[0] == "rollout.started" and kinds[-1] == "rollout.completed"
    assert kinds.count("bake.done") >= 2 and "guard.breached" not in kinds
    assert_in_order(fleet, mark)
    for node, lines in fleet.app_lines(new["id"]).items():
        assert [ln.split()[0] for ln in lines] == ["applied"], (node, lines)
    if old is not None:
        assert all(seqs[-2:] == [old, seq] for seqs in fleet.commits().values())


def test_a_release_whose_reload_fails_on_the_canary_is_rolled_back(ready: Fleet) -> None:
    fleet = ready
    mark = fleet.audit_mark()
    before = fleet.sequences()
    canary = fleet.agents[0]
    with Observer(fleet) as obs:
        bad = fleet.release("(b) failBadReload", policy(bakes=(2, 2)), bad=True)
        st = fleet.wait_status(
            lambda s: s["release"]["id"] == bad["id"] and s["phase"] == "rolled_back",
            "(b) the bad Release to be rolled back",
        )
        fleet.wait_on(st["rollback"]["sequence"], {canary.name}, "the canary on the rollback")
    assert_within_steps(obs, fleet, bad["sequence"])
    stable, rollback = st["stable"], st["rollback"]
    assert rollback["sequence"] == bad["sequence"] + 1
    assert st["nodes"]["targeted"] == 1 and st["step"] == 0

    shown = fleet.center.get(f"/v1/releases/{rollback['id']}")
    restored = fleet.center.get(f"/v1/releases/{stable['id']}")
    assert shown["configsets"] == restored["configsets"], "the rollback restores the stable content"
    assert shown["previous_id"] == bad["id"]
    assert shown["created_by"] == "center:rollout" and stable["id"] in shown["reason"]

    events = rollout_events(fleet, mark, bad["id"])
    [breach] = [e for e in events if e["action"] == "guard.breached"]
    readings = {r["signal"]: r for r in breach["details"]["readings"]}
    assert readings["failed_acks"]["status"] == "breach" and readings["failed_acks"]["value"] == 1
    [rolled] = [e for e in events if e["action"] == "rollout.rolled_back"]
    assert rolled["details"]["other"] == rollback["id"]
    assert rolled["details"]["nodes"] == [canary.node_id]

    # Who saw what: the canary committed, was handed and failed the bad Release ...
    assert fleet.commits()[canary.name][-2:] == [bad["sequence"], rollback["sequence"]]
    assert [ln.split()[0] for ln in fleet.app_lines(bad["id"])[canary.name]] == ["failed"]
    # ... and no other node ever committed it, handed it to a process or acked it.
    for agent in fleet.agents[1:]:
        assert bad["sequence"] not in fleet.commits()[agent.name], agent.name
        assert fleet.sequences()[agent.name] == before[agent.name]
        assert not fleet.app_lines(bad["id"]).get(agent.name), agent.name
    assert who_saw(fleet, mark, bad["id"]) == {canary.node_id}
    assert_in_order(fleet, mark)


def test_manual_approval_holds_and_pause_resume_abort_behave_as_documented(ready: Fleet) -> None:
    fleet = ready
    mark = fleet.audit_mark()
    new = fleet.release("(c) manual approval", policy(bakes=(1, 3), approval="manual"))
    seq = new["sequence"]

    # The canary starts on its own, bakes, then the rollout holds for an operator.
    st, on = steady_wave(fleet, seq, 0, "awaiting_approval")
    assert on == names(fleet.wave(0)) and st["nodes"]["targeted"] == 1
    code, body = fleet.steer("resume")
    assert code == 409 and body["error"]["code"] == "rollout_conflict", body
    code, body = fleet.steer("pause", "hold the hold")
    assert code == 200 and (body["phase"], body["paused_from"]) == ("paused", "awaiting_approval")
    code, body = fleet.steer("approve")
    assert code == 409 and body["error"]["details"]["phase"] == "paused", body
    code, body = fleet.steer("resume")
    assert code == 200 and body["phase"] == "awaiting_approval" and body["nodes"]["targeted"] == 1
    assert fleet.on(seq) == names(fleet.wave(0))

    fleet.center.konorctl("rollout", "approve", "checkout", "--reason", "canary looks fine")
    st, on = steady_wave(fleet, seq, 1, "baking")
    assert on == names(fleet.wave(1)) and st["nodes"]["targeted"] == 5
    [approval] = st["approvals"]
    assert (approval["step"], approval["reason"]) == (1, "canary looks fine")

    # Pause during the bake: the clock stops, nothing moves past the old bake end.
    code, paused = fleet.steer("pause", "look closer")
    assert code == 200 and (paused["phase"], paused["paused_from"]) == ("paused", "baking"), paused
    left, until = paused["bake_left_seconds"], at(paused["bake_until"])
    assert 0 < left <= 3
    wait_until(lambda: dt.datetime.now(dt.UTC) > until + dt.timedelta(seconds=1), timeout=WAIT,
               what="the paused bake's old end to pass")  # fmt: skip
    held = fleet.status()
    assert (held["phase"], held["bake_left_seconds"], held["nodes"]["targeted"]) == (
        "paused",
        left,
        5,
    )
    assert fleet.on(seq) == names(fleet.wave(1))

    # Resume: the bake continues with the time it had left, then holds for approval again.
    resumed_at = dt.datetime.now(dt.UTC)
    code, resumed = fleet.steer("resume", "fine after all")
    assert code == 200 and resumed["phase"] == "baking", resumed
    assert at(resumed["bake_until"]) - resumed_at >= dt.timedelta(seconds=left - 0.5)
    assert at(resumed["bake_until"]) > until + dt.timedelta(seconds=1)
    st, on = steady_wave(fleet, seq, 1, "awaiting_approval")
    events = rollout_events(fleet, mark, new["id"])
    [_, baked] = [e for e in events if e["action"] == "bake.done"]
    assert at(baked["at"]) >= at(resumed["bake_until"]) - dt.timedelta(seconds=0.1)
    assert st["nodes"]["targeted"] == 5 and on == names(fleet.wave(1))

    # Abort rolls back: the five exposed nodes get the rollback Release, the rest keep stable.
    code, aborted = fleet.steer("abort", "not today")
    assert code == 200 and aborted["phase"] == "rolled_back", aborted
    rollback = aborted["rollback"]["sequence"]
    fleet.wait_on(rollback, names(fleet.wave(1)), "the exposed nodes on the rollback")
    fleet.wait_on(aborted["stable"]["sequence"], names(fleet.agents[5:]), "the rest on stable")
    kinds = [(e["action"], e["actor"]) for e in rollout_events(fleet, mark, new["id"])]
    for expected in (("approval.required", "center:rollout"), ("rollout.paused", "admin"),
                     ("rollout.resumed", "admin"), ("rollout.aborted", "admin"),
                     ("rollout.rolled_back", "center:rollout")):  # fmt: skip
        assert any(k == expected[0] and expected[1] in a for k, a in kinds), (expected, kinds)
    for agent in fleet.agents[5:]:
        assert seq not in fleet.commits()[agent.name]
    assert_in_order(fleet, mark)


def test_a_second_commit_mid_rollout_supersedes_the_first(ready: Fleet) -> None:
    fleet = ready
    mark = fleet.audit_mark()
    with Observer(fleet) as obs:
        first = fleet.release("(e) first", policy(bakes=(1, 1), approval="manual"))
        steady_wave(fleet, first["sequence"], 0, "awaiting_approval")
        assert fleet.steer("approve", "on to 50 %")[0] == 200
        steady_wave(fleet, first["sequence"], 1, "awaiting_approval")
        half = names(fleet.wave(1))
        assert fleet.on(first["sequence"]) == half

        second = fleet.release("(e) second", policy(bakes=(1, 1)))
        st = fleet.wait_status(lambda s: s["release"]["id"] == second["id"], "(e) the new rollout")
        assert st["superseded"] == [first["id"]] and st["step"] == 0
        assert st["nodes"]["targeted"] == len(half), "the superseded wave is carried"
        fleet.wait_status(
            lambda s: s["release"]["id"] == second["id"] and s["phase"] == "completed",
            "(e) the new rollout to complete",
        )
        fleet.wait_on(second["sequence"], names(fleet.agents), "every node on the new Release")
    assert_within_steps(obs, fleet, first["sequence"])
    for seqs, s in obs.samples:  # the carried wave was the new Release's step one
        if s["release"]["id"] == second["id"] and s["step"] == 0:
            assert {n for n, q in seqs.items() if q == second["sequence"]} <= half
            assert s["nodes"]["targeted"] == len(half)

    events = fleet.audit(mark)
    [sup] = [e for e in events if e["action"] == "rollout.superseded"]
    assert (sup["details"]["release"], sup["details"]["other"]) == (first["id"], second["id"])
    assert set(sup["details"]["nodes"]) == {a.node_id for a in fleet.wave(1)}
    started = [
        e for e in rollout_events(fleet, mark, second["id"]) if e["action"] == "wave.started"
    ]
    assert started[0]["details"]["step"] == 0
    commits = fleet.commits()
    for agent in fleet.agents:
        mine = commits[agent.name]
        if agent.name in half:
            assert mine[-2:] == [first["sequence"], second["sequence"]], (agent.name, mine)
        else:
            assert first["sequence"] not in mine, (agent.name, mine)
            assert not fleet.app_lines(first["id"]).get(agent.name)
    assert who_saw(fleet, mark, first["id"]) == {a.node_id for a in fleet.wave(1)}
    assert_in_order(fleet, mark)
