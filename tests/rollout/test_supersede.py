"""Supersede rules S5, S6: a new Release mid-rollout."""

from __future__ import annotations

import pytest

from konorkestra.rollout import Command, Phase, RolloutError, decide, supersede
from tests.rollout.world import (
    FIX,
    NEW,
    NEWER,
    OLD,
    World,
    at,
    begin,
    kinds,
    make_nodes,
    make_policy,
    on,
)


def test_S5_a_new_release_starts_again_at_step_one_from_the_same_stable() -> None:
    world = World(make_nodes(20))
    policy = make_policy(((10, "0s"), (50, "60s"), (100, "0s")))
    d = begin(world, policy)
    world.converge(d, at(1))
    d = decide(d.state, policy, world.fleet(), at(1))
    assert d.state.step == 1 and len(on(d)) == 10
    exposed = on(d)
    d = supersede(d.state, policy, NEWER, world.fleet(), at(2))
    assert kinds(d)[:3] == ["rollout.superseded", "rollout.started", "wave.started"]
    assert d.events[0].release == NEW.id and d.events[0].other == NEWER.id
    assert d.state.step == 0 and d.state.stable == OLD and d.state.superseded == (NEW.id,)
    # the ten nodes on NEW cannot go back to OLD: they are the new wave (no one else is added)
    assert on(d, NEWER) == exposed and NEW.id not in d.desired.values()
    assert d.events[2].nodes == ()


def test_S5_a_superseding_canary_is_the_same_canary() -> None:
    world = World(make_nodes(20))
    policy = make_policy()
    d = begin(world, policy)
    canaries = on(d)
    d = supersede(d.state, policy, NEWER, world.fleet(), at(1))
    assert on(d, NEWER) == canaries


def test_S5_a_paused_or_waiting_rollout_is_superseded_too() -> None:
    world = World(make_nodes(20))
    policy = make_policy(guards={"failed_acks": 0}, on_failure="pause")
    d = begin(world, policy)
    world.converge(d, at(1), outcome="failed")
    d = decide(d.state, policy, world.fleet(), at(2))
    assert d.state.phase is Phase.PAUSED
    d = supersede(d.state, policy, NEWER, world.fleet(), at(3), actor="ci", reason="fix")
    assert d.state.phase is Phase.WAVING and d.events[0].actor == "ci"


def test_S5_rolling_back_the_superseding_release_covers_the_carried_nodes() -> None:
    world = World(make_nodes(20))
    policy = make_policy(((10, "0s"), (50, "60s"), (100, "0s")))
    d = begin(world, policy)
    world.converge(d, at(1))
    d = decide(d.state, policy, world.fleet(), at(1))
    exposed = on(d)
    d = supersede(d.state, policy, NEWER, world.fleet(), at(2))
    d = decide(d.state, policy, world.fleet(), at(3), [Command("abort", "ops")])
    assert d.rollback is not None and d.rollback.bad == NEWER and d.rollback.restore == OLD
    assert {n for n, r in d.desired.items() if r is None} == exposed


def test_S6_supersede_needs_a_higher_sequence_and_a_running_rollout() -> None:
    world = World(make_nodes(20))
    policy = make_policy()
    d = begin(world, policy)
    with pytest.raises(RolloutError):
        supersede(d.state, policy, NEW, world.fleet(), at(1))
    aborted = decide(d.state, policy, world.fleet(), at(1), [Command("abort", "ops")])
    with pytest.raises(RolloutError, match="rollback is being signed"):
        supersede(aborted.state, policy, FIX, world.fleet(), at(2))
    done = decide(d.state, policy, world.fleet(), at(1), [Command("promote", "ops")])
    with pytest.raises(RolloutError, match="start a new one"):
        supersede(done.state, policy, FIX, world.fleet(), at(2))
