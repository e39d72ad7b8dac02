"""Wave selection rules W1-W6 of ``konorkestra.rollout.waves``, one test (or more) per rule."""

from __future__ import annotations

import itertools

import pytest

from konorkestra.model.definitions import Step
from konorkestra.model.types import GroupName, NodeId
from konorkestra.rollout import Node, decide, effective_steps, plan
from konorkestra.rollout.waves import extend_wave, wave_order, wave_size
from tests.rollout.world import GROUP, World, at, begin, make_nodes, make_policy, on


@pytest.mark.parametrize(
    ("percent", "enrolled", "size"),
    [(5, 10, 1), (5, 100, 5), (5, 101, 6), (50, 3, 2), (1, 1, 1), (100, 7, 7), (10, 0, 0)],
)
def test_W1_wave_size_is_percent_rounded_up_at_least_one(
    percent: int, enrolled: int, size: int
) -> None:
    assert wave_size(percent, enrolled) == size


def test_W1_the_last_step_always_covers_every_node() -> None:
    policy = make_policy(
        ((10, "1m"), (60, "2m"))
    )  # validation refuses it; the engine still ends at 100
    assert effective_steps(policy, first_release=False)[-1] == Step(100, 120)


def test_W2_order_is_a_stable_hash_independent_of_enrollment_order_and_other_nodes() -> None:
    nodes = make_nodes(40)
    order = wave_order(GROUP, nodes, {})
    assert wave_order(GROUP, tuple(reversed(nodes)), {}) == order
    # Removing nodes keeps the others' relative order: the same canaries, release after release.
    fewer = tuple(n for n in nodes if n.id not in order[1:10])
    assert wave_order(GROUP, fewer, {}) == tuple(n for n in order if n not in order[1:10])
    assert wave_order(GroupName("search"), nodes, {}) != order
    assert order != tuple(n.id for n in nodes)  # not simply by id


def test_W2_the_same_nodes_are_canaries_release_after_release() -> None:
    world = World(make_nodes(20))
    policy = make_policy(((10, "0s"), (100, "0s")))
    assert on(begin(world, policy)) == on(begin(world, policy))


def test_W3_a_selector_draws_the_wave_from_matching_nodes_first() -> None:
    eu = tuple(Node(NodeId(f"eu{i}"), {"zone": "eu-1"}) for i in range(3))
    us = tuple(Node(NodeId(f"us{i}"), {"zone": "us-1"}) for i in range(17))
    nodes = us + eu
    wave = extend_wave(GROUP, nodes, Step(10, 0, {"zone": "eu-1"}), ())
    assert len(wave) == 2 and all(n.startswith("eu") for n in wave)
    # More room than matching nodes: all of them first, then the others in hash order.
    wave = extend_wave(GROUP, nodes, Step(25, 0, {"zone": "eu-1"}), ())
    assert set(wave[:3]) == {n.id for n in eu} and len(wave) == 5
    assert wave[3:] == wave_order(GROUP, us, {})[:2]


def test_W3_every_selector_label_must_match() -> None:
    nodes = (
        Node(NodeId("a"), {"zone": "eu-1", "tier": "web"}),
        Node(NodeId("b"), {"zone": "eu-1"}),
        Node(NodeId("c"), {"tier": "web"}),
    )
    assert wave_order(GROUP, nodes, {"zone": "eu-1", "tier": "web"})[0] == "a"


def test_W4_waves_are_cumulative_and_never_take_a_node_out() -> None:
    nodes = (*make_nodes(20, {"zone": "us-1"}), Node(NodeId("eu"), {"zone": "eu-1"}))
    steps = (Step(5, 0, {"zone": "eu-1"}), Step(50), Step(100))
    waves = plan(GROUP, nodes, steps)
    assert waves[0].nodes[0] == "eu" and len(waves[0].nodes) == 2  # 5 % of 21, rounded up
    assert set(waves[0].nodes) <= set(waves[1].nodes) <= set(waves[2].nodes)
    assert [len(w.nodes) for w in waves] == [2, 11, 21]
    assert all(set(w.added).isdisjoint(p.nodes) for p, w in itertools.pairwise(waves))


def test_W4_only_enrolled_nodes_count_and_a_full_wave_adds_nothing() -> None:
    nodes = make_nodes(10)
    gone = NodeId("gone")
    assert len(extend_wave(GROUP, nodes, Step(20), (gone,))) == 2
    full = wave_order(GROUP, nodes, {})[:2]
    assert extend_wave(GROUP, nodes, Step(20), full) == ()


def test_W5_plan_and_an_undisturbed_rollout_agree() -> None:
    world = World(make_nodes(30))
    policy = make_policy(((10, "0s"), (40, "0s"), (100, "0s")))
    seen = []
    d = begin(world, policy)
    for t in range(1, 10):
        seen.append(tuple(sorted(on(d))))
        world.converge(d, at(t))
        d = decide(d.state, policy, world.fleet(), at(t))
    expected = [tuple(sorted(w.nodes)) for w in plan(GROUP, world.nodes, policy.steps)]
    distinct = list(dict.fromkeys(seen))
    assert distinct == expected


def test_W6_all_at_once_is_one_step_of_100_percent() -> None:
    policy = make_policy(((100, "5m"),), strategy="all-at-once")
    assert effective_steps(policy, first_release=False) == (Step(100, 300),)
    world = World(make_nodes(12))
    assert len(on(begin(world, policy))) == 12


def test_W6_a_first_release_goes_to_every_node_with_the_last_bake() -> None:
    policy = make_policy(((10, "1m"), (100, "3m")))
    assert effective_steps(policy, first_release=True) == (Step(100, 180),)
    world = World(make_nodes(12))
    d = begin(world, policy, stable=None)
    assert len(on(d)) == 12
    assert d.state.stable is None
