"""A Release's convergence read incrementally over a real SQLite store: always what a fresh
``release_nodes`` counts, folding only the nodes that reported."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from konorkestra.center.app.datadir import Opened
from konorkestra.center.releases.convergence_store import ConvergenceMemories, release_nodes
from tests.center.rollouts.randomfleet import ROUNDS, SCRIPT, World, fleet_world


def assert_counted(world: World, rounds: list[list[tuple]]) -> None:  # type: ignore[type-arg]
    """After each round and a rollout step, every Release counted both ways."""
    memories = ConvergenceMemories(clock=world.clock)
    for ops in rounds:
        world.apply(ops)
        world.rig.step(at=len(ops))  # a rollout moves: the targets change too
        for release in world.releases:
            kept = memories.release_nodes(world.engine, release)
            assert kept == release_nodes(world.engine, release), (ops, release.id)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds=ROUNDS)
def test_the_memory_counts_what_a_fresh_read_counts_after_every_round(
    rounds: list[list[tuple]],  # type: ignore[type-arg]
) -> None:
    with fleet_world() as world:
        assert_counted(world, rounds)


@pytest.mark.postgresql
def test_on_both_stores_a_scripted_convergence_is_remembered_as_counted(opened: Opened) -> None:
    world = World.of(opened)
    assert_counted(world, SCRIPT)
    assert release_nodes(world.engine, world.releases[0])[0].nodes.newer == 1  # n00 moved on


def test_one_report_refolds_one_node_and_a_newer_release_counts_as_newer() -> None:
    with fleet_world(nodes=5) as world:
        first = world.releases[0]
        for node in world.rig.nodes:
            world.rig.commit(node, first, ["applied"])
        memories = ConvergenceMemories(clock=world.clock)
        counted, verdicts = memories.release_nodes(world.engine, first)
        assert counted.nodes.committed == 5 and len(verdicts) == 5
        [memory] = memories._memories._found.values()
        world.rig.commit("n02", first, ["failed"])
        counted, _ = memories.release_nodes(world.engine, first)
        assert counted.processes.failed == 1 and memory.rows.reloads == 1
        world.apply([("release",)])
        world.rig.commit("n04", world.releases[1])  # counts for the first only once it exists
        assert memories.release_nodes(world.engine, first) == release_nodes(world.engine, first)
        assert memories.release_nodes(world.engine, first)[0].nodes.newer == 1
