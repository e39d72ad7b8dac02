"""Guard rules G1-G7 of ``konorkestra.rollout.guards``, read directly and through the engine."""

from __future__ import annotations

import pytest

from konorkestra.model.definitions import Guard
from konorkestra.model.types import NodeId
from konorkestra.rollout import Phase, decide
from konorkestra.rollout.guards import exposure, guard_set
from tests.rollout.world import NEW, OLD, World, at, begin, make_nodes, make_policy, on


def world_of(count: int = 4, watchers: int = 2) -> World:
    return World(make_nodes(count), watchers=watchers)


def read(world: World, signal: str, threshold: float, *, final: bool = False):  # type: ignore[no-untyped-def]
    view = exposure(world.fleet(), [n.id for n in world.nodes], NEW.id)
    verdict = guard_set([Guard(signal, threshold)]).read(view, final=final)
    (reading,) = verdict.readings
    return reading


def all_commit(world: World, outcome: str = "applied") -> None:
    for node in world.nodes:
        world.commit(node.id, NEW, at(1))
        world.ack(node.id, NEW, at(1), outcome)


def test_G1_exposure_is_the_enrolled_targeted_nodes() -> None:
    world = world_of(4)
    view = exposure(world.fleet(), [NodeId("n000"), NodeId("gone")], NEW.id)
    assert [v.node for v in view] == ["n000"]


def test_G1_the_verdict_is_breach_then_pending_then_pass() -> None:
    world = world_of(2)
    all_commit(world)
    view = exposure(world.fleet(), [n.id for n in world.nodes], NEW.id)
    ok = Guard("failed_acks", 0)
    waiting = Guard("error_rate", 0.1)  # no metric yet
    bad = Guard("ack_success_rate", 1.5)
    assert guard_set([ok]).read(view, final=False).status == "pass"
    assert guard_set([ok, waiting]).read(view, final=False).status == "pending"
    assert guard_set([ok, waiting, bad]).read(view, final=False).status == "breach"
    assert guard_set([]).read(view, final=False).status == "pass"


def test_G1_a_value_equal_to_the_threshold_never_breaches() -> None:
    world = world_of(2, watchers=1)
    all_commit(world)
    world.ack(NodeId("n000"), NEW, at(2), "failed")
    assert read(world, "failed_acks", 1).status == "pass"
    assert read(world, "ack_success_rate", 0.5).status == "pass"


def test_G2_failed_acks_counts_processes_whose_latest_ack_failed() -> None:
    world = world_of(3, watchers=2)
    all_commit(world)
    world.ack(NodeId("n001"), NEW, at(5), "failed")  # both processes of n001 fail later
    world.ack(NodeId("n001"), OLD, at(6), "applied")  # another release: ignored
    reading = read(world, "failed_acks", 1)
    assert (reading.value, reading.status) == (2.0, "breach")


def test_G3_ack_success_rate_breaches_once_the_threshold_is_out_of_reach() -> None:
    world = world_of(10, watchers=1)
    for node in world.nodes[:3]:
        world.commit(node.id, NEW, at(1))
        world.ack(node.id, NEW, at(1), "failed")
    # 3 failed, 7 missing: best case 0.7, still >= 0.7
    assert read(world, "ack_success_rate", 0.7).status == "pending"
    # the same with 0.75: out of reach even if all missing ones succeed
    assert read(world, "ack_success_rate", 0.75).status == "breach"


def test_G3_missing_acks_count_as_failed_at_a_deadline() -> None:
    world = world_of(4, watchers=1)
    for node in world.nodes[:3]:
        world.commit(node.id, NEW, at(1))
        world.ack(node.id, NEW, at(1))
    assert read(world, "ack_success_rate", 0.9).status == "pending"
    final = read(world, "ack_success_rate", 0.9, final=True)
    assert (final.value, final.status) == (0.75, "breach")


def test_G3_no_process_to_ack_is_a_rate_of_one() -> None:
    world = world_of(2, watchers=0)
    all_commit(world)
    assert read(world, "ack_success_rate", 0.99).status == "pass"


def test_G4_stale_nodes_counts_expired_freshness_and_waits_for_reports() -> None:
    world = world_of(3)
    world.commit(NodeId("n000"), NEW, at(1))
    world.stale(NodeId("n000"))
    assert read(world, "stale_nodes", 0).status == "breach"
    assert read(world, "stale_nodes", 1).status == "pending"
    all_commit(world)
    assert read(world, "stale_nodes", 1).status == "pass"


@pytest.mark.parametrize(
    ("signal", "good", "bad"), [("error_rate", 0.01, 0.2), ("latency_p99_ms", 80, 900)]
)
def test_G5_app_metrics_take_the_max_of_each_process_latest_value_since_commit(
    signal: str, good: float, bad: float
) -> None:
    world = world_of(2)
    all_commit(world)
    threshold = (good + bad) / 2
    world.metric(NodeId("n000"), signal, bad, at(0))  # before the commit: the old config
    world.metric(NodeId("n000"), signal, good, at(2))
    assert read(world, signal, threshold).status == "pending"  # n001 has not reported
    world.metric(NodeId("n001"), signal, bad, at(3))
    world.metric(NodeId("n001"), signal, good, at(4))  # the latest value counts
    reading = read(world, signal, threshold)
    assert (reading.value, reading.status) == (good, "pass")
    world.metric(NodeId("n000"), signal, bad, at(5))
    assert read(world, signal, threshold).status == "breach"


def test_G5_a_node_without_processes_owes_no_metric() -> None:
    world = world_of(2, watchers=0)
    all_commit(world)
    assert read(world, "error_rate", 0.1).status == "pass"


def test_G6_missing_data_holds_the_wave_and_fails_closed_at_the_deadline() -> None:
    world = World(make_nodes(20))
    policy = make_policy(guards={"error_rate": 0.05})
    d = begin(world, policy)
    world.converge(d, at(1))  # committed and acked, but no metric reported
    d = decide(d.state, policy, world.fleet(), at(2))
    assert d.state.phase is Phase.WAVING
    (reading,) = d.readings
    assert (reading.status, reading.detail) == ("pending", "no data")
    d = decide(d.state, policy, world.fleet(), at(600))
    assert d.state.phase is Phase.ROLLING_BACK
    (breach,) = [e for e in d.events if e.kind == "guard.breached"]
    assert breach.reason == "wave deadline" and breach.readings[0].status == "breach"


def test_G6_data_arriving_in_time_lets_the_bake_start() -> None:
    world = World(make_nodes(20))
    policy = make_policy(guards={"error_rate": 0.05})
    d = begin(world, policy)
    world.converge(d, at(1))
    for node in on(d):
        world.metric(node, "error_rate", 0.01, at(30))
    d = decide(d.state, policy, world.fleet(), at(31))
    assert d.state.phase is Phase.BAKING and d.state.bake_until == at(91)


def test_G7_an_unknown_signal_never_passes() -> None:
    world = world_of(1)
    all_commit(world)
    reading = read(world, "cpu_temperature", 1.0)
    assert (reading.status, reading.detail) == ("breach", "unknown signal")
