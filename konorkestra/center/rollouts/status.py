"""What ``konorctl rollout status`` shows: a rollout's waves, nodes and guards (pure).

Example::

    status_json(row, policy, fleet, now)
    # {"group": "checkout", "phase": "baking", "step": 0, "steps": 3,
    #  "bake_left_seconds": 41.2, "waves": [{"step": 0, "percent": 5, "state": "current",
    #  "nodes": 1, "committed": 1, "applied": 2, "failed": 0, "stale": 0}, ...],
    #  "guards": [{"signal": "ack_success_rate", "threshold": 1, "value": 1, ...}], ...}

Rules (tested by name in ``tests/center/rollouts/test_status.py``):

V1  Waves are the rollout's effective steps. A wave before the current step
    holds the nodes the plan (W5) added at that step that are targeted; the
    current wave holds every other targeted node (carried over from a
    superseded Release, or joined mid-wave); a later wave holds the nodes the
    plan would add. A wave is ``done``, ``current`` or ``pending``; every wave
    of a completed rollout is ``done``.
V2  Per wave: nodes, nodes that committed the Release, processes whose latest
    ack is ``applied`` / ``failed``, nodes whose agent reports stale.
V3  ``nodes``: enrolled, targeted (with the new Release), on stable (the rest).
    Every enrolled node of a completed rollout holds its Release, so all of
    them are targeted. ``waiting_for_nodes`` is true while a wave has no
    enrolled node to expose (engine rule B6).
V4  ``bake_left_seconds`` and ``wave_deadline_left_seconds`` count from ``now``
    (never below 0) and are None outside a bake or a wave; a paused rollout
    shows the time its bake had left when it paused.
V5  ``guards`` are the last stored readings, as the runner last read them.

No I/O, no clock: the route passes ``now``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from konorkestra.center.rollouts.store import RolloutRow, reading_json
from konorkestra.model.definitions import Policy
from konorkestra.model.types import NodeId, ReleaseId
from konorkestra.rollout import Fleet, Phase, ReleaseRef, effective_steps, plan
from konorkestra.rollout.guards import exposure


def _ref(ref: ReleaseRef | None) -> dict[str, Any] | None:
    return None if ref is None else {"id": ref.id, "sequence": ref.sequence}


def iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _left(until: dt.datetime | None, now: dt.datetime) -> float | None:
    return None if until is None else round(max(0.0, (until - now).total_seconds()), 1)


Waves = list[tuple[int, tuple[NodeId, ...]]]


def wave_nodes(row: RolloutRow, policy: Policy, fleet: Fleet) -> Waves:
    """V1: ``(step, nodes)`` for every wave."""
    state = row.state
    steps = effective_steps(policy, first_release=state.stable is None)
    planned = plan(state.group, fleet.nodes, steps)
    targeted = holding(row, fleet)
    current = len(steps) - 1 if state.phase is Phase.COMPLETED else min(state.step, len(steps) - 1)
    out: list[tuple[int, tuple[NodeId, ...]]] = []
    seen: set[NodeId] = set()
    for wave in planned:
        if wave.step < current:
            nodes = tuple(n for n in wave.added if n in targeted)
        elif wave.step == current:
            nodes = tuple(sorted(targeted - seen))
        else:
            nodes = tuple(n for n in wave.added if n not in targeted)
        seen.update(nodes)
        out.append((wave.step, nodes))
    return out


def holding(row: RolloutRow, fleet: Fleet) -> set[NodeId]:
    """The enrolled nodes told to hold the new Release (all of them once completed)."""
    if row.state.phase is Phase.COMPLETED:
        return set(fleet.ids)
    return set(row.state.targeted) & fleet.ids


def status_json(row: RolloutRow, policy: Policy, fleet: Fleet, now: dt.datetime) -> dict[str, Any]:
    """The rollout as ``GET /v1/rollouts/{group}`` answers it (V1-V5)."""
    state = row.state
    steps = effective_steps(policy, first_release=state.stable is None)
    done = state.phase is Phase.COMPLETED
    waves = []
    for index, nodes in wave_nodes(row, policy, fleet):
        step = steps[index]
        where = "done" if done or index < state.step else "pending"
        if not done and index == state.step:
            where = "current"
        waves.append({"step": index, "percent": step.percent, "bake_seconds": step.bake_seconds,
                      "selector": dict(step.selector), "state": where,
                      **_counts(fleet, nodes, state.release.id)})  # fmt: skip
    enrolled = fleet.ids
    targeted = len(holding(row, fleet))
    bake_left = _left(state.bake_until, now) if state.phase is Phase.BAKING else None
    if state.phase is Phase.PAUSED and state.paused_from is Phase.BAKING and state.paused_at:
        bake_left = _left(state.bake_until, state.paused_at)
    return {
        "group": state.group,
        "release": _ref(state.release),
        "stable": _ref(state.stable),
        "rollback": _ref(state.rollback),
        "phase": state.phase.value,
        "paused_from": None if state.paused_from is None else state.paused_from.value,
        "reason": state.reason,
        "step": state.step,
        "steps": len(steps),
        "policy": {
            "name": policy.name,
            "strategy": policy.strategy,
            "approval": policy.approval,
            "onFailure": policy.on_failure,
        },
        "started_at": iso(state.started_at),
        "updated_at": iso(state.updated_at),
        "wave_deadline": iso(state.wave_deadline),
        "wave_deadline_left_seconds": _left(state.wave_deadline, now)
        if state.phase is Phase.WAVING
        else None,
        "bake_until": iso(state.bake_until),
        "bake_left_seconds": bake_left,
        "nodes": {
            "enrolled": len(enrolled),
            "targeted": targeted,
            "stable": len(enrolled) - targeted,
        },
        "waiting_for_nodes": state.phase is Phase.WAVING and not targeted,
        "waves": waves,
        "guards": [reading_json(r) for r in row.readings],
        "approvals": [
            {"step": a.step, "actor": a.actor, "reason": a.reason, "at": iso(a.at)}
            for a in state.approvals
        ],
        "superseded": list(state.superseded),
        "revision": row.revision,
    }


def _counts(fleet: Fleet, nodes: tuple[NodeId, ...], release: ReleaseId) -> dict[str, int]:
    """V2, read as the guards read them (:func:`konorkestra.rollout.guards.exposure`: each
    process's latest ack of the Release; nodes no longer enrolled report nothing)."""
    views = exposure(fleet, nodes, release)
    outcomes = [outcome for v in views for _, outcome in v.acks]
    return {
        "nodes": len(nodes),
        "committed": sum(v.committed_at is not None for v in views),
        "applied": outcomes.count("applied"),
        "failed": outcomes.count("failed"),
        "stale": sum(v.stale for v in views),
    }
