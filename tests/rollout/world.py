"""Builders for the rollout engine's tests: a small fleet whose reports a test writes by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from konorkestra.model.definitions import Policy
from konorkestra.model.types import GroupName, NodeId, ReleaseId, Sequence
from konorkestra.rollout import (
    Ack,
    Decision,
    Fleet,
    Metric,
    Node,
    NodeReport,
    ProcessId,
    ReleaseRef,
    start,
)

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
GROUP = GroupName("checkout")
OLD = ReleaseRef(ReleaseId("checkout-1-aaaaaaaaaaaaaaaa"), Sequence(1))
NEW = ReleaseRef(ReleaseId("checkout-2-bbbbbbbbbbbbbbbb"), Sequence(2))
NEWER = ReleaseRef(ReleaseId("checkout-3-cccccccccccccccc"), Sequence(3))
FIX = ReleaseRef(ReleaseId("checkout-4-dddddddddddddddd"), Sequence(4))


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def make_policy(
    steps: Iterable[tuple[int, str]] = ((10, "60s"), (50, "60s"), (100, "0s")),
    *,
    guards: Mapping[str, float] | None = None,
    on_failure: str = "rollback",
    approval: str = "auto",
    strategy: str = "canary",
    selectors: Mapping[int, Mapping[str, str]] | None = None,
) -> Policy:
    raw: list[dict[str, Any]] = []
    for i, (percent, bake) in enumerate(steps):
        step: dict[str, Any] = {"percent": percent, "bake": bake}
        if selectors and i in selectors:
            step["selector"] = dict(selectors[i])
        raw.append(step)
    spec: dict[str, Any] = {
        "strategy": strategy,
        "steps": raw,
        "guards": [{"signal": s, "threshold": t} for s, t in (guards or {}).items()],
        "onFailure": on_failure,
        "approval": approval,
    }
    return Policy.from_spec("p", spec)


def make_nodes(count: int, labels: Mapping[str, str] | None = None) -> tuple[Node, ...]:
    return tuple(Node(NodeId(f"n{i:03d}"), dict(labels or {})) for i in range(count))


@dataclass
class World:
    """A Group's nodes and their reports, changed by the test step by step."""

    nodes: tuple[Node, ...]
    watchers: int = 1
    reports: dict[NodeId, NodeReport] = field(default_factory=dict)

    def fleet(self) -> Fleet:
        return Fleet(self.nodes, dict(self.reports))

    def procs(self, node: NodeId) -> tuple[ProcessId, ...]:
        return tuple(ProcessId(f"{node}/{p}") for p in range(self.watchers))

    def commit(self, node: NodeId, release: ReleaseRef, when: dt.datetime) -> None:
        self.reports[node] = NodeReport(
            committed=release.id, committed_at=when, watchers=frozenset(self.procs(node))
        )

    def ack(
        self, node: NodeId, release: ReleaseRef, when: dt.datetime, outcome: str = "applied"
    ) -> None:
        report = self.reports[node]
        acks = tuple(Ack(p, release.id, outcome, when) for p in self.procs(node))  # type: ignore[arg-type]
        self.reports[node] = replace(report, acks=report.acks + acks)

    def metric(self, node: NodeId, signal: str, value: float, when: dt.datetime) -> None:
        report = self.reports[node]
        metrics = tuple(Metric(p, signal, value, when) for p in self.procs(node))
        self.reports[node] = replace(report, metrics=report.metrics + metrics)

    def stale(self, node: NodeId) -> None:
        self.reports[node] = replace(self.reports[node], stale=True)

    def converge(
        self,
        decision: Decision,
        when: dt.datetime,
        outcome: str = "applied",
        only: Iterable[NodeId] | None = None,
    ) -> list[NodeId]:
        """Every node told a Release it does not hold commits and acks it; returns them."""
        moved = []
        allowed = None if only is None else set(only)
        for node, release_id in decision.desired.items():
            if release_id is None or (allowed is not None and node not in allowed):
                continue
            if self.reports.get(node, NodeReport()).committed == release_id:
                continue
            ref = ReleaseRef(release_id, Sequence(0))
            self.commit(node, ref, when)
            self.ack(node, ref, when, outcome)
            moved.append(node)
        return moved

    def join(self, node: Node) -> None:
        self.nodes = (*self.nodes, node)

    def leave(self, node: NodeId) -> None:
        self.nodes = tuple(n for n in self.nodes if n.id != node)


def on(decision: Decision, release: ReleaseRef = NEW) -> set[NodeId]:
    """Nodes the decision tells to take ``release``."""
    return {n for n, r in decision.desired.items() if r == release.id}


def kinds(decision: Decision) -> list[str]:
    return [e.kind for e in decision.events]


def begin(
    world: World, policy: Policy, now: dt.datetime = T0, stable: ReleaseRef | None = OLD
) -> Decision:
    return start(GROUP, policy, NEW, stable, world.fleet(), now)
