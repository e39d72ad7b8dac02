"""Operator commands A1-A7 of ``konorkestra.rollout.commands``."""

from __future__ import annotations

from konorkestra.model.definitions import Policy
from konorkestra.rollout import Command, Decision, Phase, command_error, decide
from konorkestra.rollout.inputs import COMMANDS
from tests.rollout.world import NEW, OLD, World, at, begin, kinds, make_nodes, make_policy, on


def through_first_bake(world: World, approval: str = "manual") -> tuple[Decision, Policy]:
    policy = make_policy(((10, "60s"), (50, "60s"), (100, "0s")), approval=approval)
    d = begin(world, policy)
    world.converge(d, at(1))
    d = decide(d.state, policy, world.fleet(), at(1))
    d = decide(d.state, policy, world.fleet(), at(61))
    return d, policy


def test_A1_manual_approval_holds_every_step_after_the_first() -> None:
    world = World(make_nodes(20))
    policy = make_policy(((10, "60s"), (50, "60s"), (100, "0s")), approval="manual")
    d = begin(world, policy)
    assert len(on(d)) == 2  # the canary starts on its own
    world.converge(d, at(1))
    d = decide(d.state, policy, world.fleet(), at(1))
    d = decide(d.state, policy, world.fleet(), at(61))
    assert d.state.phase is Phase.AWAITING_APPROVAL
    assert kinds(d) == ["bake.done", "approval.required"]
    d = decide(d.state, policy, world.fleet(), at(5000))
    assert d.state.phase is Phase.AWAITING_APPROVAL and len(on(d)) == 2  # waits forever
    d = decide(d.state, policy, world.fleet(), at(5001), [Command("approve", "alice", "ok")])
    assert kinds(d) == ["approval.granted", "wave.started"]
    granted = d.events[0]
    assert (granted.actor, granted.reason, granted.step) == ("alice", "ok", 1)
    assert d.state.approvals[0].actor == "alice" and len(on(d)) == 10


def test_A1_auto_approval_never_waits() -> None:
    d, _ = through_first_bake(World(make_nodes(20)), approval="auto")
    assert d.state.phase is Phase.WAVING and d.state.step == 1


def test_A2_pause_freezes_targets_guards_and_clocks() -> None:
    world = World(make_nodes(20))
    policy = make_policy(guards={"failed_acks": 0})
    d = begin(world, policy)
    d = decide(d.state, policy, world.fleet(), at(1), [Command("pause", "bob", "investigating")])
    assert d.state.phase is Phase.PAUSED and d.events[0].actor == "bob"
    world.converge(d, at(2), outcome="failed")  # would breach if guards were read
    later = decide(d.state, policy, world.fleet(), at(10_000))  # past every deadline
    assert later.state.phase is Phase.PAUSED and later.desired == d.desired
    assert not later.events


def test_A3_resume_returns_to_the_paused_phase_and_reads_guards_at_once() -> None:
    world = World(make_nodes(20))
    policy = make_policy(guards={"failed_acks": 0}, on_failure="pause")
    d = begin(world, policy)
    d = decide(d.state, policy, world.fleet(), at(1), [Command("pause", "bob")])
    world.converge(d, at(2), outcome="failed")
    d = decide(d.state, policy, world.fleet(), at(3), [Command("resume", "bob", "go on")])
    assert kinds(d)[:2] == ["rollout.resumed", "guard.breached"]
    assert d.state.phase is Phase.PAUSED and d.state.reason == "guard failed_acks"


def test_A4_abort_rolls_back_with_actor_and_reason() -> None:
    world = World(make_nodes(20))
    policy = make_policy()
    d = begin(world, policy)
    d = decide(d.state, policy, world.fleet(), at(1), [Command("abort", "carol", "wrong flag")])
    assert kinds(d) == ["rollout.aborted"]
    assert (d.events[0].actor, d.events[0].reason) == ("carol", "wrong flag")
    assert d.state.phase is Phase.ROLLING_BACK
    assert d.rollback is not None and d.rollback.restore == OLD and d.rollback.bad == NEW
    assert NEW.id not in d.desired.values()


def test_A4_abort_of_a_first_release_ends_aborted() -> None:
    world = World(make_nodes(5))
    policy = make_policy()
    d = begin(world, policy, stable=None)
    d = decide(d.state, policy, world.fleet(), at(1), [Command("abort", "carol")])
    assert d.state.phase is Phase.ABORTED and d.rollback is None
    assert set(d.desired.values()) == {None}


def test_A5_promote_skips_every_wait_and_completes() -> None:
    world = World(make_nodes(20))
    d, policy = through_first_bake(world)
    assert d.state.phase is Phase.AWAITING_APPROVAL
    d = decide(d.state, policy, world.fleet(), at(62), [Command("promote", "dave", "hotfix")])
    assert kinds(d) == ["rollout.promoted", "rollout.completed"]
    assert d.events[0].actor == "dave" and len(d.events[0].nodes) == 18
    assert d.state.phase is Phase.COMPLETED and on(d) == world.fleet().ids
    assert d.state.next_stable() == NEW


def test_A6_a_command_out_of_phase_is_rejected_and_audited() -> None:
    world = World(make_nodes(20))
    policy = make_policy()
    d = begin(world, policy)
    assert command_error(d.state, Command("approve", "eve")) is not None
    assert command_error(d.state, Command("resume", "eve")) is not None
    assert command_error(d.state, Command("pause", "eve")) is None
    after = decide(d.state, policy, world.fleet(), at(1), [Command("approve", "eve")])
    assert kinds(after) == ["command.rejected"] and after.events[0].actor == "eve"
    assert after.state.phase is Phase.WAVING and after.desired == d.desired
    done = decide(d.state, policy, world.fleet(), at(1), [Command("promote", "x")])
    for kind in COMMANDS:
        assert command_error(done.state, Command(kind, "x")) is not None


def test_A7_commands_apply_in_order_before_time_rules() -> None:
    world = World(make_nodes(20))
    policy = make_policy()
    d = begin(world, policy)
    world.converge(d, at(1))
    # Paused first: the complete wave does not start baking in this decision.
    paused = decide(d.state, policy, world.fleet(), at(2), [Command("pause", "a")])
    assert paused.state.phase is Phase.PAUSED
    # Paused then resumed: the time rules run after both and the bake starts.
    both = [Command("pause", "a"), Command("resume", "a")]
    resumed = decide(d.state, policy, world.fleet(), at(2), both)
    assert kinds(resumed) == ["rollout.paused", "rollout.resumed", "bake.started"]
