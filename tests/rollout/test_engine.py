"""Waves and bakes (B1-B5), desired state (D1), determinism and time (S2, S3)."""

from __future__ import annotations

import datetime as dt

from konorkestra.model.types import NodeId
from konorkestra.rollout import WAVE_TIMEOUT, Command, Node, Phase, decide
from tests.rollout.world import NEW, OLD, T0, World, at, begin, kinds, make_nodes, make_policy, on


def test_B1_the_wave_waits_for_every_commit_and_every_watching_process() -> None:
    world = World(make_nodes(20), watchers=2)
    policy = make_policy()
    d = begin(world, policy)
    first, second = sorted(on(d))
    world.commit(first, NEW, at(1))
    world.ack(first, NEW, at(1))
    world.commit(second, NEW, at(1))  # committed, but its two processes have not acked
    d = decide(d.state, policy, world.fleet(), at(2))
    assert d.state.phase is Phase.WAVING
    world.ack(second, NEW, at(3))
    d = decide(d.state, policy, world.fleet(), at(3))
    assert d.state.phase is Phase.BAKING
    assert "bake.started" in kinds(d)


def test_B1_a_failed_ack_completes_the_wave_when_no_guard_objects() -> None:
    world = World(make_nodes(20))
    policy = make_policy()
    d = begin(world, policy)
    world.converge(d, at(1), outcome="failed")
    d = decide(d.state, policy, world.fleet(), at(1))
    assert d.state.phase is Phase.BAKING  # the guards judge health, not wave completion


def test_B1_an_ack_of_another_release_does_not_count() -> None:
    world = World(make_nodes(20))
    policy = make_policy()
    d = begin(world, policy)
    for node in on(d):
        world.commit(node, NEW, at(1))
        world.ack(node, OLD, at(1))
    d = decide(d.state, policy, world.fleet(), at(2))
    assert d.state.phase is Phase.WAVING


def test_B2_the_bake_ends_at_an_absolute_time_and_a_zero_bake_in_the_same_decision() -> None:
    world = World(make_nodes(20))
    policy = make_policy(((10, "0s"), (50, "90s"), (100, "0s")))
    d = begin(world, policy)
    world.converge(d, at(5))
    d = decide(d.state, policy, world.fleet(), at(5))
    assert kinds(d) == ["bake.started", "bake.done", "wave.started"]
    assert d.state.step == 1 and len(on(d)) == 10
    world.converge(d, at(7))
    d = decide(d.state, policy, world.fleet(), at(7))
    assert d.state.phase is Phase.BAKING and d.state.bake_until == at(97)
    assert decide(d.state, policy, world.fleet(), at(96)).state.phase is Phase.BAKING
    assert decide(d.state, policy, world.fleet(), at(97)).state.step == 2


def test_B3_a_wave_not_complete_by_its_deadline_fails() -> None:
    world = World(make_nodes(20))
    policy = make_policy(on_failure="pause")
    d = begin(world, policy)
    assert d.state.wave_deadline == T0 + WAVE_TIMEOUT
    one, _ = sorted(on(d))
    world.converge(d, at(1), only=[one])  # the other canary never answers
    before = decide(d.state, policy, world.fleet(), T0 + WAVE_TIMEOUT - dt.timedelta(seconds=1))
    assert before.state.phase is Phase.WAVING
    d = decide(before.state, policy, world.fleet(), T0 + WAVE_TIMEOUT)
    assert d.state.phase is Phase.PAUSED
    (breach,) = [e for e in d.events if e.kind == "guard.breached"]
    assert breach.reason == "wave deadline"


def test_B4_after_the_last_bake_the_rollout_completes() -> None:
    world = World(make_nodes(20))
    policy = make_policy(((10, "60s"), (100, "30s")))
    d = begin(world, policy)
    now = 0.0
    while not d.state.terminal and now < 1000:
        now += 10
        world.converge(d, at(now))
        d = decide(d.state, policy, world.fleet(), at(now))
    assert d.state.phase is Phase.COMPLETED
    assert d.state.next_stable() == NEW
    assert on(d) == world.fleet().ids
    assert now == 110  # acked at 10, bake to 70, wave 2 acked at 80, bake to 110


def test_B5_a_node_joining_mid_wave_gets_the_release_only_inside_the_wave() -> None:
    world = World(make_nodes(19))
    policy = make_policy(((10, "60s"), (100, "0s")))
    d = begin(world, policy)
    assert len(on(d)) == 2  # 10 % of 19 -> 2
    world.join(Node(NodeId("late")))  # 20 nodes: still 2, no room
    d = decide(d.state, policy, world.fleet(), at(1))
    assert len(on(d)) == 2 and d.desired[NodeId("late")] == OLD.id
    world.join(Node(NodeId("later")))  # 21 nodes: 3, room for the next in order
    d = decide(d.state, policy, world.fleet(), at(2))
    assert len(on(d)) == 3 and "wave.extended" in kinds(d)


def test_B5_a_node_joining_during_a_bake_keeps_the_stable_release() -> None:
    world = World(make_nodes(10))
    policy = make_policy(((50, "60s"), (100, "0s")))
    d = begin(world, policy)
    world.converge(d, at(1))
    d = decide(d.state, policy, world.fleet(), at(1))
    assert d.state.phase is Phase.BAKING
    for i in range(10):
        world.join(Node(NodeId(f"new{i}")))
    d = decide(d.state, policy, world.fleet(), at(2))
    assert len(on(d)) == 5 and all(d.desired[NodeId(f"new{i}")] == OLD.id for i in range(10))


def test_B5_a_node_joining_during_a_first_releases_bake_gets_it() -> None:
    world = World(make_nodes(2))
    policy = make_policy(((50, "0s"), (100, "1h")))
    d = begin(world, policy, stable=None)
    world.converge(d, at(1))
    d = decide(d.state, policy, world.fleet(), at(1))
    assert d.state.phase is Phase.BAKING
    world.join(Node(NodeId("late")))
    d = decide(d.state, policy, world.fleet(), at(2))
    assert d.desired[NodeId("late")] == NEW.id and d.state.phase is Phase.BAKING
    assert "wave.extended" in kinds(d)


def test_B6_a_wave_without_nodes_waits_for_them_and_its_deadline_restarts() -> None:
    world = World(())
    policy = make_policy(((10, "60s"), (100, "0s")), approval="manual")
    d = begin(world, policy)
    d = decide(d.state, policy, world.fleet(), at(3600))  # long past the first deadline
    assert d.state.phase is Phase.WAVING and d.state.targeted == ()
    world.join(Node(NodeId("first")))
    d = decide(d.state, policy, world.fleet(), at(3601))
    assert d.state.phase is Phase.WAVING and on(d) == {NodeId("first")}
    assert d.state.wave_deadline == at(3601) + WAVE_TIMEOUT
    world.converge(d, at(3602))
    d = decide(d.state, policy, world.fleet(), at(3602))
    assert d.state.phase is Phase.BAKING


def test_B6_an_empty_last_step_holds_nothing_back_and_completes() -> None:
    world = World(())
    policy = make_policy(((10, "60s"), (100, "0s")))
    first = begin(world, policy, stable=None)  # one step of 100 %: the last
    assert first.state.phase is Phase.COMPLETED
    world.join(Node(NodeId("late")))
    assert decide(first.state, policy, world.fleet(), at(5)).desired[NodeId("late")] == NEW.id


def test_D1_desired_state_per_node() -> None:
    world = World(make_nodes(20))
    policy = make_policy(((10, "60s"), (100, "0s")))
    d = begin(world, policy)
    assert set(d.desired) == world.fleet().ids
    assert {r for n, r in d.desired.items() if n not in on(d)} == {OLD.id}
    paused = decide(d.state, policy, world.fleet(), at(1), [Command("pause", "ops")])
    assert paused.desired == d.desired  # a pause holds everything
    first = begin(world, make_policy(((10, "60s"), (100, "0s"))), stable=None)
    assert set(first.desired.values()) == {NEW.id}


def test_S2_decisions_are_deterministic() -> None:
    world = World(make_nodes(20))
    policy = make_policy(guards={"error_rate": 0.1})
    d = begin(world, policy)
    world.converge(d, at(3))
    for node in on(d):
        world.metric(node, "error_rate", 0.01, at(4))
    a = decide(d.state, policy, world.fleet(), at(5), [Command("pause", "ops", "look")])
    b = decide(d.state, policy, world.fleet(), at(5), [Command("pause", "ops", "look")])
    assert a == b


def test_S2_time_never_runs_backwards() -> None:
    world = World(make_nodes(20))
    policy = make_policy()
    d = begin(world, policy, now=at(100))
    world.converge(d, at(101))
    earlier = decide(d.state, policy, world.fleet(), at(50))
    assert earlier.state.updated_at == at(100)
    assert earlier.state.bake_until == at(160)


def test_S3_deadlines_only_move_forward_across_a_pause() -> None:
    world = World(make_nodes(20))
    policy = make_policy()
    d = begin(world, policy)
    deadline = d.state.wave_deadline
    d = decide(d.state, policy, world.fleet(), at(100), [Command("pause", "ops")])
    d = decide(d.state, policy, world.fleet(), at(400), [Command("resume", "ops")])
    assert deadline is not None and d.state.wave_deadline is not None
    assert d.state.wave_deadline >= deadline
    world.converge(d, at(401))
    d = decide(d.state, policy, world.fleet(), at(401))
    bake_until = d.state.bake_until
    d = decide(d.state, policy, world.fleet(), at(431), [Command("pause", "ops")])
    d = decide(d.state, policy, world.fleet(), at(1000), [Command("resume", "ops")])
    assert bake_until is not None and d.state.bake_until == at(1030) > bake_until
