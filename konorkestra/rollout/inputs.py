"""What the rollout engine is told: the fleet as the Center sees it, and operator commands.

Example::

    fleet = Fleet(
        nodes=(Node(NodeId("n1"), {"zone": "eu-1"}), Node(NodeId("n2"))),
        reports={NodeId("n1"): NodeReport(committed=new.id, committed_at=t,
                                          watchers=frozenset({ProcessId("n1/4242")}),
                                          acks=(Ack(ProcessId("n1/4242"), new.id, "applied", t),))},
    )
    Command("approve", actor="alice", reason="canary looks fine")

These are plain values built by the Center from its store (node table, agent
reports, SDK acks and metrics, the operator's request); nothing here reads them
itself. Times are timezone-aware datetimes; the engine never asks the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NewType

from konorkestra.model.types import NodeId, ReleaseId, Sequence

ProcessId = NewType("ProcessId", str)
"""One application process on one node, as the Agent names it in who-saw-what."""

AckOutcome = Literal["applied", "failed"]
CommandKind = Literal["approve", "pause", "resume", "abort", "promote"]
COMMANDS: tuple[CommandKind, ...] = ("approve", "pause", "resume", "abort", "promote")


@dataclass(frozen=True, order=True)
class ReleaseRef:
    """A Release as the engine needs it: its id and its per-group sequence."""

    id: ReleaseId
    sequence: Sequence


@dataclass(frozen=True)
class Node:
    """An enrolled node of the Group, at decision time."""

    id: NodeId
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Ack:
    """A process's reload outcome for one Release (SDK ``ack``)."""

    process: ProcessId
    release: ReleaseId
    outcome: AckOutcome
    at: dt.datetime


@dataclass(frozen=True)
class Metric:
    """An application metric a process sent with the SDK's ``report()``."""

    process: ProcessId
    signal: str
    value: float
    at: dt.datetime


@dataclass(frozen=True)
class NodeReport:
    """The latest the Center knows about one node for this Group."""

    committed: ReleaseId | None = None
    """The Release the node's Agent last reported COMMITTED for the Group."""
    committed_at: dt.datetime | None = None
    watchers: frozenset[ProcessId] = frozenset()
    """Processes on the node watching the Group (who-saw-what)."""
    acks: tuple[Ack, ...] = ()
    metrics: tuple[Metric, ...] = ()
    stale: bool = False
    """The Agent's freshness statement has expired."""


EMPTY_REPORT = NodeReport()


@dataclass(frozen=True)
class Fleet:
    """The Group's enrolled nodes and what they reported."""

    nodes: tuple[Node, ...]
    reports: Mapping[NodeId, NodeReport] = field(default_factory=dict, hash=False)

    def report(self, node: NodeId) -> NodeReport:
        """The node's report, or an empty one when it has said nothing yet."""
        return self.reports.get(node, EMPTY_REPORT)

    @property
    def ids(self) -> frozenset[NodeId]:
        return frozenset(n.id for n in self.nodes)


@dataclass(frozen=True)
class Command:
    """An operator's instruction, recorded with who gave it and why."""

    kind: CommandKind
    actor: str
    reason: str = ""
