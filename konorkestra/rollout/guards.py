"""Guards: is the new Release healthy on the nodes that have it? Small checks, composed.

Example::

    view = exposure(fleet, targeted=("n1", "n2"), release=new.id)
    verdict = guard_set(policy.guards).read(view, final=False)
    verdict.status            # "pass" | "pending" | "breach"
    verdict.readings          # one Reading per guard: value, threshold, status

Rules (each has a test named after it in ``tests/rollout/test_guards.py``):

G1  Guards read the *exposed* nodes: enrolled nodes targeted with the new
    Release. Each guard gives a :class:`Reading` (value, threshold, status
    ``pass``/``pending``/``breach``); the set's verdict is ``breach`` if any
    breaches, else ``pending`` if any waits for data, else ``pass``. A value
    equal to the threshold never breaches (:mod:`konorkestra.model.signals`).
G2  ``failed_acks``: the number of processes on exposed nodes whose latest ack
    of the new Release is ``failed``.
G3  ``ack_success_rate``: applied / expected, where every process watching the
    Group on an exposed node that committed is expected to ack, and an exposed
    node that has not committed counts as one missing ack. It breaches as soon
    as the rate could not reach the threshold even if every missing ack were
    ``applied``; it passes only when nothing is missing. No process to ack at
    all is a rate of 1.
G4  ``stale_nodes``: the number of exposed nodes whose Agent reports an expired
    freshness statement; it waits while an exposed node has not committed.
G5  ``error_rate`` and ``latency_p99_ms``: the maximum, over processes on
    exposed nodes, of each process's latest value reported at or after its node
    committed the new Release (older values measured the old config). The max
    is deliberate: a canary exists to catch the few processes that break. It
    waits until every exposed node that has watchers (or acks) sent at least one
    such value.
G6  Missing data never passes. ``pending`` holds a wave open and a bake from
    ending; with ``final=True`` (a wave deadline or the end of a bake) every
    pending reading becomes a breach with the detail ``no data``, and
    ``ack_success_rate`` counts missing acks as failed.
G7  A signal this engine does not know breaches (fails closed); schema
    validation should have refused it already.

Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from konorkestra.model.definitions import Guard
from konorkestra.model.signals import GUARD_SIGNALS, breaches
from konorkestra.model.types import NodeId, ReleaseId
from konorkestra.rollout.inputs import AckOutcome, Fleet, Metric, ProcessId

Status = Literal["pass", "pending", "breach"]


@dataclass(frozen=True)
class Reading:
    """One guard's current value against its threshold."""

    signal: str
    threshold: float
    value: float | None
    status: Status
    detail: str = ""


@dataclass(frozen=True)
class NodeView:
    """One exposed node, reduced to what guards read."""

    node: NodeId
    committed_at: dt.datetime | None
    """When it committed the new Release; None while it has not."""
    watchers: frozenset[ProcessId]
    acks: tuple[tuple[ProcessId, AckOutcome], ...]
    """The latest ack of the new Release per process, by process id."""
    metrics: tuple[Metric, ...]
    """Values reported at or after ``committed_at``."""
    stale: bool

    @property
    def missing_acks(self) -> int:
        """Expected acks not yet received (a node that has not committed: one)."""
        if self.committed_at is None:
            return 1
        acked = {p for p, _ in self.acks}
        return len(self.watchers - acked)

    @property
    def has_processes(self) -> bool:
        return bool(self.watchers) or bool(self.acks)


def _latest_acks(
    acks: Iterable[tuple[ProcessId, AckOutcome, dt.datetime]],
) -> dict[ProcessId, AckOutcome]:
    latest: dict[ProcessId, tuple[dt.datetime, AckOutcome]] = {}
    for process, outcome, at in acks:
        seen = latest.get(process)
        if seen is None or (at, outcome) > seen:  # a tie: "failed" > "applied"
            latest[process] = (at, outcome)
    return {p: o for p, (_, o) in latest.items()}


def exposure(fleet: Fleet, targeted: Iterable[NodeId], release: ReleaseId) -> tuple[NodeView, ...]:
    """G1: the exposed nodes' views, in node id order."""
    enrolled = fleet.ids
    out = []
    for node in sorted(set(targeted) & enrolled):
        report = fleet.report(node)
        committed_at = report.committed_at if report.committed == release else None
        if committed_at is None and report.committed == release:
            committed_at = dt.datetime.min.replace(tzinfo=dt.UTC)
        acks = _latest_acks(
            (a.process, a.outcome, a.at) for a in report.acks if a.release == release
        )
        metrics = tuple(
            m for m in report.metrics if committed_at is not None and m.at >= committed_at
        )
        out.append(
            NodeView(
                node,
                committed_at,
                report.watchers,
                tuple(sorted(acks.items())),
                metrics,
                report.stale,
            )
        )
    return tuple(out)


def wave_complete(view: Iterable[NodeView]) -> bool:
    """Every exposed node committed and every watching process acked (B1)."""
    return all(n.missing_acks == 0 for n in view)


class Check(Protocol):
    """One guard: reads the exposed nodes and says pass, pending or breach."""

    def read(self, view: tuple[NodeView, ...], *, final: bool) -> Reading: ...


def _finish(
    signal: str, threshold: float, value: float | None, missing: bool, final: bool
) -> Reading:
    if value is not None and breaches(signal, value=value, threshold=threshold):
        return Reading(signal, threshold, value, "breach")
    if missing:
        return Reading(signal, threshold, value, "breach" if final else "pending", "no data")
    return Reading(signal, threshold, value, "pass")


@dataclass(frozen=True)
class FailedAcks:
    """G2."""

    threshold: float
    signal: str = "failed_acks"

    def read(self, view: tuple[NodeView, ...], *, final: bool) -> Reading:
        failed = sum(1 for n in view for _, o in n.acks if o == "failed")
        missing = any(n.missing_acks for n in view)
        return _finish(self.signal, self.threshold, float(failed), missing, final)


@dataclass(frozen=True)
class AckSuccessRate:
    """G3."""

    threshold: float
    signal: str = "ack_success_rate"

    def read(self, view: tuple[NodeView, ...], *, final: bool) -> Reading:
        applied = sum(1 for n in view for _, o in n.acks if o == "applied")
        received = sum(len(n.acks) for n in view)
        missing = sum(n.missing_acks for n in view)
        expected = received + missing
        if expected == 0:
            return Reading(self.signal, self.threshold, 1.0, "pass")
        worst = applied / expected
        if final or not missing:
            return _finish(self.signal, self.threshold, worst, False, final)
        best = (applied + missing) / expected
        seen = applied / received if received else None
        detail = f"{missing} of {expected} acks missing"
        if breaches(self.signal, value=best, threshold=self.threshold):
            return Reading(self.signal, self.threshold, seen, "breach", detail)
        return Reading(self.signal, self.threshold, seen, "pending", detail)


@dataclass(frozen=True)
class StaleNodes:
    """G4."""

    threshold: float
    signal: str = "stale_nodes"

    def read(self, view: tuple[NodeView, ...], *, final: bool) -> Reading:
        stale = sum(1 for n in view if n.stale)
        missing = any(n.committed_at is None for n in view)
        return _finish(self.signal, self.threshold, float(stale), missing, final)


@dataclass(frozen=True)
class AppMetric:
    """G5: ``error_rate`` or ``latency_p99_ms``."""

    signal: str
    threshold: float

    def read(self, view: tuple[NodeView, ...], *, final: bool) -> Reading:
        values: list[float] = []
        missing = False
        for node in view:
            latest: dict[ProcessId, tuple[dt.datetime, float]] = {}
            for m in node.metrics:
                if m.signal == self.signal and (
                    m.process not in latest or m.at >= latest[m.process][0]
                ):
                    latest[m.process] = (m.at, m.value)
            values.extend(v for _, v in latest.values())
            if not latest and (node.committed_at is None or node.has_processes):
                missing = True
        value = max(values) if values else None
        return _finish(self.signal, self.threshold, value, missing, final)


@dataclass(frozen=True)
class Unknown:
    """G7: a signal nobody taught this engine; it never passes."""

    signal: str
    threshold: float

    def read(self, view: tuple[NodeView, ...], *, final: bool) -> Reading:
        return Reading(self.signal, self.threshold, None, "breach", "unknown signal")


def check_for(guard: Guard) -> Check:
    """The check that implements one Policy guard."""
    if guard.signal not in GUARD_SIGNALS:
        return Unknown(guard.signal, guard.threshold)
    if guard.signal == "failed_acks":
        return FailedAcks(guard.threshold)
    if guard.signal == "ack_success_rate":
        return AckSuccessRate(guard.threshold)
    if guard.signal == "stale_nodes":
        return StaleNodes(guard.threshold)
    return AppMetric(guard.signal, guard.threshold)


@dataclass(frozen=True)
class Verdict:
    """All guards' readings and what they add up to (G1)."""

    readings: tuple[Reading, ...]

    @property
    def status(self) -> Status:
        statuses = {r.status for r in self.readings}
        if "breach" in statuses:
            return "breach"
        return "pending" if "pending" in statuses else "pass"

    @property
    def breached(self) -> tuple[Reading, ...]:
        return tuple(r for r in self.readings if r.status == "breach")


@dataclass(frozen=True)
class AllOf:
    """Every check must pass (G1)."""

    checks: tuple[Check, ...]

    def read(self, view: tuple[NodeView, ...], *, final: bool) -> Verdict:
        return Verdict(tuple(c.read(view, final=final) for c in self.checks))


def guard_set(guards: Iterable[Guard]) -> AllOf:
    """The Policy's guards as one composed check."""
    return AllOf(tuple(check_for(g) for g in guards))
