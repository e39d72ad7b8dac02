"""How far one Release has reached: nodes and processes counted per state, a pure function.

Example::

    >>> from konorkestra.center.nodes.fold import AppliedReport, fold_node_state
    >>> from konorkestra.model.types import GroupName, NodeId, ReleaseId
    >>> target = Target(ReleaseId("checkout-2-ab"), GroupName("checkout"), 2, latest=True)
    >>> nodes = [Member(NodeId("n1")), Member(NodeId("n2"))]
    >>> states = {NodeId("n1"): fold_node_state(
    ...     [AppliedReport(GroupName("checkout"), ReleaseId("checkout-2-ab"), 2, None)])}
    >>> c = converge(target, nodes, states)
    >>> (c.nodes.targeted, c.nodes.committed, c.nodes.behind)
    (2, 1, 1)

:func:`judge` gives one node's place and flags (the per-node table of the
dashboard's Release page); :func:`converge` counts them.

Which nodes a Release *targets* is the rollout's decision: the nodes the
Group's current rollout tells to hold it (:attr:`Target.targets`, rule D1 of
:mod:`konorkestra.rollout.engine`), plus the nodes already on it. Without a
rollout (a store from before rollouts), the Group's latest Release targets
every enrolled, non-revoked node and an older Release the nodes that still
have it committed. The counts are a :class:`Tally`; per-wave counts are the
rollout status's (:mod:`konorkestra.center.rollouts.status`).

:mod:`konorkestra.center.releases.convergence_store` fetches the Group's nodes
and their report rows and folds them
(:func:`konorkestra.center.nodes.fold.fold_node_state`); this module decides
what they count as. The rules, each tested by name in
``tests/center/releases/test_convergence.py``:

* **C1** Only members count: a node that is revoked, or not in the Release's
  Group, is counted nowhere, whatever it reported.
* **C2** A member's committed Release for the Group is the fold's (N5: the
  highest sequence it applied). It is *on* this Release when that is this
  Release's id, *newer* when its sequence is higher, *older* otherwise
  (including a node that committed nothing).
* **C3** With a rollout (:attr:`Target.targets` set), a Release targets the
  members the rollout tells to hold it and the members on it; without one,
  the latest Release targets every member but those newer (which only a
  Release deleted from the store can leave). Either way an older Release
  targets the members on it: a node that has moved on to a newer Release is
  counted as ``newer``, never as committed to or behind the old one.
* **C4** ``committed`` are the targeted nodes on this Release; ``behind`` the
  targeted nodes that are not (on an older Release or none). So
  ``targeted == committed + behind``.
* **C5** ``refused`` are the members whose newest refusal for the Group names
  this Release (by id; by sequence when the refusal names no id) and that are
  not on it.
* **C6** ``stale`` are the targeted nodes whose newest stale flag for the Group
  is true.
* **C7** Processes count on targeted nodes only, by their newest ack: an ack
  naming this Release with status ``applied`` is ``applied``, any other status
  naming it is ``failed``; ``delivered`` are the processes whose newest delivery
  names it. ``failed`` among the nodes are the targeted nodes with at least one
  failed process.
* **C8** :meth:`Convergence.to_json` is the ``convergence`` object of
  ``GET /v1/releases/{id}`` and ``GET /v1/groups/{name}``
  (``docs/reference/api.md``), key for key.

Pure: the Release, its Group's members and their folded states in, a
:class:`Convergence` out; no database, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from konorkestra.center.nodes.fold import GroupState, NodeState
from konorkestra.model.types import GroupName, JsonObject, NodeId, ReleaseId

NODE_STATES = ("targeted", "committed", "behind", "newer", "refused", "stale", "failed")
"""The node counts of a :class:`Tally`, in JSON and gauge order."""
PROCESS_STATES = ("delivered", "applied", "failed")
"""The process counts of a :class:`Tally`."""


@dataclass(frozen=True)
class Target:
    """The Release whose convergence is counted, and whether it is its Group's latest."""

    release: ReleaseId
    group: GroupName
    sequence: int
    latest: bool
    targets: frozenset[NodeId] | None = None
    """The nodes the Group's rollout tells to hold this Release (None: no rollout)."""


@dataclass(frozen=True)
class Member:
    """A node of the Group as enrolment records it."""

    id: NodeId
    revoked: bool = False
    in_group: bool = True


@dataclass(frozen=True)
class NodeCounts:
    """Nodes per state (C3–C7)."""

    targeted: int = 0
    committed: int = 0
    behind: int = 0
    newer: int = 0
    refused: int = 0
    stale: int = 0
    failed: int = 0

    def to_json(self) -> JsonObject:
        return {name: getattr(self, name) for name in NODE_STATES}


@dataclass(frozen=True)
class ProcessCounts:
    """Processes per state (C7)."""

    delivered: int = 0
    applied: int = 0
    failed: int = 0

    def to_json(self) -> JsonObject:
        return {name: getattr(self, name) for name in PROCESS_STATES}


@dataclass(frozen=True)
class Tally:
    """The counts over one set of nodes: the whole Group today, one wave later."""

    nodes: NodeCounts
    processes: ProcessCounts


@dataclass(frozen=True)
class Convergence:
    """How far :attr:`target` has reached its Group (C1–C8).

    ``partial`` is set by the store read when it had to leave report rows out
    (see :mod:`konorkestra.center.releases.convergence_store`).
    """

    target: Target
    total: Tally
    partial: bool = False

    @property
    def nodes(self) -> NodeCounts:
        return self.total.nodes

    @property
    def processes(self) -> ProcessCounts:
        return self.total.processes

    def to_json(self) -> JsonObject:
        """The ``convergence`` object of the API (C8)."""
        t = self.target
        return {
            "release": t.release,
            "group": t.group,
            "sequence": t.sequence,
            "latest": t.latest,
            "nodes": self.nodes.to_json(),
            "processes": self.processes.to_json(),
            "partial": self.partial,
        }

    def summary(self) -> str:
        """One line for a table: ``3/3 committed, 5 acked, 1 failed``."""
        n, p = self.nodes, self.processes
        text = f"{n.committed}/{n.targeted} committed, {p.applied} acked"
        extra = [(p.failed, "failed"), (n.refused, "refused"), (n.stale, "stale")]
        return ", ".join([text, *(f"{k} {what}" for k, what in extra if k)])


@dataclass(frozen=True)
class NodeVerdict:
    """Where one member stands against the target (C2–C7): the row a per-node table shows.

    ``place`` is ``on``, ``newer`` or ``older`` (C2); ``targeted`` and the flags
    are as :func:`converge` counts them; ``processes`` are the node's counts (C7).
    """

    node: NodeId
    place: str
    targeted: bool
    refused: bool
    stale: bool
    processes: ProcessCounts

    @property
    def committed(self) -> bool:
        return self.targeted and self.place == "on"

    @property
    def failed(self) -> bool:
        return self.targeted and self.processes.failed > 0


def judge(target: Target, member: Member, state: NodeState | None) -> NodeVerdict | None:
    """One member against ``target``; ``None`` for a node that counts nowhere (C1)."""
    if member.revoked or not member.in_group:
        return None  # C1
    group = None if state is None else state.group(target.group)
    place = _place(target, group)
    refused = group is not None and place != "on" and _refused(target, group)  # C5
    targeted = place != "newer" and not (
        place == "older"
        and (not target.latest if target.targets is None else member.id not in target.targets)
    )  # C3: only the nodes told to take it, or on it
    procs = dict.fromkeys(PROCESS_STATES, 0)
    if targeted and group is not None:
        _count_processes(target, group, procs)
    stale = bool(targeted and group is not None and group.stale)  # C6
    return NodeVerdict(member.id, place, targeted, refused, stale, ProcessCounts(**procs))


def converge(
    target: Target, members: Iterable[Member], states: Mapping[NodeId, NodeState]
) -> Convergence:
    """Count ``members`` (their states folded from reports) for ``target`` (C1–C7)."""
    nodes = dict.fromkeys(NODE_STATES, 0)
    procs = dict.fromkeys(PROCESS_STATES, 0)
    for member in members:
        v = judge(target, member, states.get(member.id))
        if v is None:
            continue
        nodes["refused"] += v.refused
        if v.place == "newer":
            nodes["newer"] += 1
            continue
        if not v.targeted:
            continue
        nodes["targeted"] += 1
        nodes["committed" if v.place == "on" else "behind"] += 1  # C4
        nodes["stale"] += v.stale
        nodes["failed"] += v.failed
        for name in PROCESS_STATES:
            procs[name] += getattr(v.processes, name)
    return Convergence(target, Tally(NodeCounts(**nodes), ProcessCounts(**procs)))


def _place(target: Target, group: GroupState | None) -> str:
    """``on``, ``newer`` or ``older``: where the node stands against ``target`` (C2)."""
    applied = None if group is None else group.applied
    if applied is None:
        return "older"
    if applied.release == target.release:
        return "on"
    return "newer" if applied.sequence > target.sequence else "older"


def _refused(target: Target, group: GroupState) -> bool:
    r = group.refused
    if r is None:
        return False
    if r.release is not None:
        return r.release == target.release
    return r.sequence == target.sequence


def _count_processes(target: Target, group: GroupState, procs: dict[str, int]) -> int:
    """Add the node's processes to ``procs`` (C7); how many failed."""
    failed = 0
    for p in group.processes:
        if p.release == target.release:
            procs["delivered"] += 1
        if p.ack is None or p.ack.release != target.release:
            continue
        if p.ack.status == "applied":
            procs["applied"] += 1
        else:
            procs["failed"] += 1
            failed += 1
    return failed
