"""What ``konorctl plan`` shows, built from a semantic diff and the Center's fleet.

Example::

    from konorkestra.cli.plan_model import GroupFleet, FleetNode, build_plan
    diff = diff_resolved(before, after)                         # repo.semdiff
    fleets = {"checkout": GroupFleet((FleetNode("4db9…", "node-00"),), first_release=False)}
    plan = build_plan(diff, fleets)                             # or {} offline
    plan.groups[0].waves[0].nodes                              # the canary nodes
    plan.to_json()                                             # konorctl plan -o json

Invariants (tested in ``tests/cli/test_plan_cmd.py``):

* **PL1** The plan lists exactly the Groups of the diff, in its order (SD1):
  a Group whose Release would not change is only named in ``unchanged``.
* **PL2** Waves come from :func:`konorkestra.rollout.effective_steps` and
  :func:`konorkestra.rollout.plan` -- the engine's own wave selection -- over
  the Group's enrolled nodes as the Center lists them, so a plan and an
  undisturbed rollout never disagree. A Group with no stable Release at the
  Center (``first_release``) rolls out in one step of 100 % (W6).
* **PL3** Offline (no fleet for a Group) a wave has ``nodes is None``: only
  its percentage is known, and ``first_release`` is assumed only for a Group
  the diff adds.
* **PL4** The earliest time to full rollout is the sum of the effective
  steps' bakes; approval is required when the Policy says ``manual`` and
  there is more than one step (approval is asked between steps, A1).
* **PL5** A removed Group gets no Release: no waves, no time, no approval.
* **PL6** When a rollout of the Group is running at the Center, the plan
  names its Release (``superseding``): the new Release would supersede it
  (S5) and keep the nodes it already reached, so its first waves may be
  larger than planned.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from konorkestra.model.definitions import Policy
from konorkestra.model.types import GroupName, JsonObject, NodeId
from konorkestra.repo.semdiff import GroupDiff, SemanticDiff, describe_policy
from konorkestra.rollout import Node, effective_steps, plan


@dataclass(frozen=True)
class FleetNode:
    """An enrolled node of a Group and the processes watching the Group on it."""

    id: NodeId
    name: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    processes: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        return {"id": self.id, "name": self.name, "processes": list(self.processes)}


@dataclass(frozen=True)
class GroupFleet:
    """A Group's enrolled nodes, whether the Center has a stable Release for it, and
    the Release whose rollout is running now (``None`` when none is)."""

    nodes: tuple[FleetNode, ...]
    first_release: bool
    running: str | None = None


@dataclass(frozen=True)
class WavePlan:
    """One step: its percentage and bake, and (online) the nodes it holds and adds."""

    step: int
    percent: int
    bake_seconds: int
    selector: Mapping[str, str]
    nodes: tuple[FleetNode, ...] | None
    added: tuple[FleetNode, ...] | None

    def to_json(self) -> JsonObject:
        def listed(nodes: tuple[FleetNode, ...] | None) -> list[JsonObject] | None:
            return None if nodes is None else [n.to_json() for n in nodes]

        return {
            "step": self.step,
            "percent": self.percent,
            "bake_seconds": self.bake_seconds,
            "selector": dict(self.selector),
            "size": None if self.nodes is None else len(self.nodes),
            "nodes": listed(self.nodes),
            "added": listed(self.added),
        }


@dataclass(frozen=True)
class GroupPlan:
    """A Group whose Release would change: its diff, Policy, waves, time and approval."""

    diff: GroupDiff
    policy: Policy | None
    first_release: bool
    online: bool
    waves: tuple[WavePlan, ...]
    superseding: str | None = None

    @property
    def name(self) -> GroupName:
        return self.diff.name

    @property
    def earliest_seconds(self) -> int:
        """PL4: the sum of the effective steps' bakes."""
        return sum(w.bake_seconds for w in self.waves)

    @property
    def approval_required(self) -> bool:
        """PL4: ``approval: manual`` and more than one step."""
        return self.policy is not None and self.policy.approval == "manual" and len(self.waves) > 1

    @property
    def enrolled(self) -> int | None:
        return len(self.waves[-1].nodes or ()) if self.online and self.waves else None

    def to_json(self) -> JsonObject:
        return {
            **self.diff.to_json(),
            "governing_policy": describe_policy(self.policy) if self.policy else None,
            "first_release": self.first_release,
            "enrolled": self.enrolled,
            "waves": [w.to_json() for w in self.waves],
            "earliest_full_rollout_seconds": self.earliest_seconds if self.waves else None,
            "approval_required": self.approval_required,
            "superseding": self.superseding,
        }


@dataclass(frozen=True)
class Plan:
    """Every Group whose Release would change, and whether the Center was asked."""

    diff: SemanticDiff
    groups: tuple[GroupPlan, ...]
    online: bool
    offline_reason: str | None = None

    def to_json(self) -> JsonObject:
        doc = self.diff.to_json()
        doc["groups"] = [g.to_json() for g in self.groups]
        doc["center"] = {"online": self.online, "reason": self.offline_reason}
        return doc


def _waves(group: GroupDiff, policy: Policy, fleet: GroupFleet | None) -> tuple[WavePlan, ...]:
    first = fleet.first_release if fleet is not None else group.op == "add"
    steps = effective_steps(policy, first_release=first)
    if fleet is None:
        return tuple(
            WavePlan(i, s.percent, s.bake_seconds, s.selector, None, None)
            for i, s in enumerate(steps)
        )
    by_id = {n.id: n for n in fleet.nodes}
    nodes = tuple(Node(n.id, dict(n.labels)) for n in fleet.nodes)
    return tuple(
        WavePlan(
            w.step,
            w.percent,
            w.bake_seconds,
            steps[w.step].selector,
            tuple(by_id[i] for i in w.nodes),
            tuple(by_id[i] for i in w.added),
        )
        for w in plan(group.name, nodes, steps)
    )


def plan_group(group: GroupDiff, fleet: GroupFleet | None) -> GroupPlan:
    """PL2-PL6 for one Group of the diff."""
    policy = group.policy.new
    if group.op == "remove" or policy is None:
        return GroupPlan(group, group.policy.old, False, fleet is not None, ())
    first = fleet.first_release if fleet is not None else group.op == "add"
    running = fleet.running if fleet is not None else None
    waves = _waves(group, policy, fleet)
    return GroupPlan(group, policy, first, fleet is not None, waves, running)


def build_plan(
    diff: SemanticDiff, fleets: Mapping[str, GroupFleet], *, offline_reason: str | None = None
) -> Plan:
    """PL1: the plan of every Group in ``diff``; ``fleets`` is empty offline."""
    online = offline_reason is None
    groups = tuple(plan_group(g, fleets.get(g.name) if online else None) for g in diff.groups)
    return Plan(diff, groups, online, offline_reason)
