"""Which nodes a rollout step reaches: one wave selection for the engine and ``konorctl plan``.

Example::

    >>> from konorkestra.model.definitions import Step
    >>> from konorkestra.model.types import GroupName, NodeId
    >>> from konorkestra.rollout.inputs import Node
    >>> nodes = tuple(Node(NodeId(f"n{i}")) for i in range(10))
    >>> [len(w.nodes) for w in plan(GroupName("checkout"), nodes, (Step(5), Step(50), Step(100)))]
    [1, 5, 10]

Rules (each has a test named after it in ``tests/rollout/test_waves.py``):

W1  A step's wave size is ``ceil(percent x enrolled / 100)``, at least one node
    when the Group has any, never more than the Group has; the last step of a
    rollout always covers every node (:func:`effective_steps`).
W2  Node order is the sha256 of ``group NUL node id``: it depends on nothing
    else (not enrollment order, not the other nodes), so the same nodes are the
    canaries release after release, and a Group's order differs from another's.
W3  A step's label ``selector`` puts the nodes whose labels match all of it
    first (in W2 order), then the others (in W2 order).
W4  Waves are cumulative: a step keeps every enrolled node already targeted and
    adds nodes in its order until it holds its size; a node is never taken out.
    Only enrolled nodes count; none is added once the size is reached.
W5  :func:`plan` folds :func:`extend_wave` over the steps from nothing: the same
    function the engine calls at every decision, so a plan and an undisturbed
    rollout never disagree.
W6  ``all-at-once`` is one step of 100 %. A Group's first Release (no stable
    Release) is one step of 100 % too, with the last step's bake: there is
    nothing to protect yet (as Argo Rollouts does on an initial deploy), and the
    guards still watch the bake.

Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from konorkestra.model.definitions import Policy, Step
from konorkestra.model.types import GroupName, NodeId
from konorkestra.rollout.inputs import Node


def wave_size(percent: int, enrolled: int) -> int:
    """W1: ``ceil(percent x enrolled / 100)``, at least 1 when there are nodes."""
    if enrolled <= 0:
        return 0
    size = -(-max(0, percent) * enrolled // 100)
    return min(enrolled, max(1, size))


def node_key(group: GroupName, node: NodeId) -> str:
    """W2: a node's place in its Group's order."""
    return hashlib.sha256(f"{group}\0{node}".encode()).hexdigest()


def matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    """W3: every selector label is present with the same value."""
    return all(labels.get(k) == v for k, v in selector.items())


def wave_order(
    group: GroupName, nodes: Iterable[Node], selector: Mapping[str, str]
) -> tuple[NodeId, ...]:
    """W2 + W3: the order a step draws its wave in."""
    ranked = sorted(
        nodes, key=lambda n: (not matches(n.labels, selector), node_key(group, n.id), n.id)
    )
    return tuple(n.id for n in ranked)


def extend_wave(
    group: GroupName, nodes: Iterable[Node], step: Step, targeted: Iterable[NodeId]
) -> tuple[NodeId, ...]:
    """W4: the nodes to add to ``targeted`` so that the step holds its size.

    Returns only the additions, in wave order (the caller keeps ``targeted``).
    """
    enrolled = tuple(nodes)
    have = set(targeted) & {n.id for n in enrolled}
    room = wave_size(step.percent, len(enrolled)) - len(have)
    if room <= 0:
        return ()
    fresh = (n for n in wave_order(group, enrolled, step.selector) if n not in have)
    return tuple(n for _, n in zip(range(room), fresh, strict=False))


def effective_steps(policy: Policy, *, first_release: bool) -> tuple[Step, ...]:
    """W1 + W6: the steps a rollout really takes."""
    steps = policy.steps or (Step(100),)
    last = steps[-1]
    if first_release or policy.strategy == "all-at-once":
        return (Step(100, last.bake_seconds),)
    if last.percent != 100:
        steps = (*steps[:-1], replace(last, percent=100))
    return steps


@dataclass(frozen=True)
class Wave:
    """One step of a plan: the whole wave and what it adds to the one before."""

    step: int
    percent: int
    bake_seconds: int
    nodes: tuple[NodeId, ...]
    added: tuple[NodeId, ...]


def plan(group: GroupName, nodes: Iterable[Node], steps: Iterable[Step]) -> tuple[Wave, ...]:
    """W5: every wave of a rollout over ``nodes`` if nobody joins, leaves or fails."""
    enrolled = tuple(nodes)
    targeted: tuple[NodeId, ...] = ()
    out = []
    for index, step in enumerate(steps):
        added = extend_wave(group, enrolled, step, targeted)
        targeted = (*targeted, *added)
        out.append(Wave(index, step.percent, step.bake_seconds, targeted, added))
    return tuple(out)
