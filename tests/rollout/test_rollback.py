"""Failure and rollback rules R1-R6 of ``konorkestra.rollout.engine``."""

from __future__ import annotations

import dataclasses

import pytest

from konorkestra.model.types import Sequence
from konorkestra.rollout import Command, Phase, RolloutError, RolloutState, decide, rollback_signed
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


def breached_canary(on_failure: str = "rollback", stable: object = OLD):  # type: ignore[no-untyped-def]
    world = World(make_nodes(20))
    policy = make_policy(guards={"failed_acks": 0, "ack_success_rate": 0.9}, on_failure=on_failure)
    d = begin(world, policy, stable=stable)  # type: ignore[arg-type]
    canaries = on(d)
    world.converge(d, at(1), outcome="failed")
    d = decide(d.state, policy, world.fleet(), at(2))
    return world, policy, d, canaries


def test_R1_a_breach_is_audited_with_every_reading_and_the_reason() -> None:
    _, _, d, _ = breached_canary()
    (breach,) = [e for e in d.events if e.kind == "guard.breached"]
    assert breach.reason == "guard failed_acks, ack_success_rate"
    values = {r.signal: (r.value, r.threshold, r.status) for r in breach.readings}
    assert values == {"failed_acks": (2.0, 0, "breach"), "ack_success_rate": (0.0, 0.9, "breach")}


def test_R1_guards_are_read_while_awaiting_approval() -> None:
    world = World(make_nodes(20))
    policy = make_policy(((10, "0s"), (100, "0s")), guards={"error_rate": 0.1}, approval="manual")
    d = begin(world, policy)
    world.converge(d, at(1))
    for node in on(d):
        world.metric(node, "error_rate", 0.0, at(1))
    d = decide(d.state, policy, world.fleet(), at(1))
    assert d.state.phase is Phase.AWAITING_APPROVAL
    for node in on(d):
        world.metric(node, "error_rate", 0.5, at(100))
    d = decide(d.state, policy, world.fleet(), at(100))
    assert d.state.phase is Phase.ROLLING_BACK


def test_R2_rollback_asks_for_a_new_release_and_withholds_the_bad_one() -> None:
    _, _, d, canaries = breached_canary()
    assert d.state.phase is Phase.ROLLING_BACK
    request = d.rollback
    assert request is not None
    assert (request.bad, request.restore, request.sequence) == (NEW, OLD, Sequence(3))
    assert all(d.desired[n] is None for n in canaries)  # hold: they may already have it
    assert NEW.id not in d.desired.values()


def test_R2_the_request_survives_a_restart() -> None:
    _, _, d, _ = breached_canary()
    again = RolloutState.from_json(d.state.to_json())
    assert again.rollback_request() == d.rollback


def test_R3_the_signed_rollback_goes_to_every_node_that_got_the_bad_one() -> None:
    world, policy, d, canaries = breached_canary()
    d = rollback_signed(d.state, policy, world.fleet(), at(3), NEWER)
    assert kinds(d) == ["rollout.rolled_back"] and d.events[0].other == NEWER.id
    assert on(d, NEWER) == canaries
    assert {r for n, r in d.desired.items() if n not in canaries} == {OLD.id}
    assert d.state.next_stable() == NEWER
    assert rollback_signed(d.state, policy, world.fleet(), at(4), NEWER).events == ()
    with pytest.raises(RolloutError):
        rollback_signed(d.state, policy, world.fleet(), at(4), FIX)


def test_R3_a_rollback_must_be_newer_than_the_bad_release() -> None:
    world, policy, d, _ = breached_canary()
    with pytest.raises(RolloutError):
        rollback_signed(d.state, policy, world.fleet(), at(3), OLD)


def test_R4_on_failure_pause_holds_everything_until_an_operator_acts() -> None:
    world, policy, d, canaries = breached_canary("pause")
    assert d.state.phase is Phase.PAUSED and d.rollback is None
    assert on(d) == canaries  # nothing added, nothing withdrawn
    later = decide(d.state, policy, world.fleet(), at(10_000))
    assert later.state == dataclasses.replace(d.state, updated_at=at(10_000))
    aborted = decide(later.state, policy, world.fleet(), at(10_001), [Command("abort", "ops")])
    assert aborted.state.phase is Phase.ROLLING_BACK


def test_R5_a_first_release_pauses_instead_of_rolling_back() -> None:
    _, _, d, _ = breached_canary("rollback", stable=None)
    assert d.state.phase is Phase.PAUSED and d.rollback is None
    assert "nothing to roll back to" in d.state.reason


def test_R6_after_abort_or_rollback_no_node_is_told_the_new_release() -> None:
    world, policy, d, _ = breached_canary()
    for t in range(3, 30):
        world.converge(d, at(t))
        d = decide(d.state, policy, world.fleet(), at(t), [Command("promote", "x")])
        assert NEW.id not in d.desired.values()
    d = rollback_signed(d.state, policy, world.fleet(), at(40), NEWER)
    for t in range(41, 60):
        d = decide(d.state, policy, world.fleet(), at(t), [Command("resume", "x")])
        assert NEW.id not in d.desired.values()
