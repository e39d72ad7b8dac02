"""The moves between phases, shared by the time rules (engine) and operator commands.

Every function takes a state and a :class:`Context` and returns the next state
with the audit events the move produced; none decides *whether* to move — the
rules in :mod:`konorkestra.rollout.engine` and :mod:`konorkestra.rollout.commands`
do. Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from konorkestra.model.definitions import Policy, Step
from konorkestra.model.types import NodeId, ReleaseId
from konorkestra.rollout.guards import Reading
from konorkestra.rollout.inputs import Fleet
from konorkestra.rollout.state import Event, Phase, RolloutState
from konorkestra.rollout.waves import effective_steps, extend_wave

WAVE_TIMEOUT = dt.timedelta(minutes=10)
"""B3: how long a wave may take to commit, ack and report before it counts as failed.

A module constant for now; a Policy field may override it later (the state stores
the absolute deadline, so changing it never moves a running wave's deadline)."""

Moved = tuple[RolloutState, tuple[Event, ...]]


@dataclass(frozen=True)
class Context:
    """The inputs of one decision besides the state."""

    policy: Policy
    fleet: Fleet
    now: dt.datetime

    def steps(self, state: RolloutState) -> tuple[Step, ...]:
        return effective_steps(self.policy, first_release=state.stable is None)


def event(
    state: RolloutState,
    ctx: Context,
    kind: str,
    *,
    step: int | None = None,
    actor: str | None = None,
    reason: str = "",
    nodes: tuple[NodeId, ...] = (),
    readings: tuple[Reading, ...] = (),
    other: ReleaseId | None = None,
) -> Event:
    """An audit event about ``state``'s Release at the decision's time."""
    at_step = state.step if step is None else step
    return Event(kind, ctx.now, state.release.id, at_step, actor, reason, nodes, readings, other)


def top_up(state: RolloutState, ctx: Context, kind: str = "wave.extended") -> Moved:
    """W4/B5: add nodes to the current wave up to its size (only while waving)."""
    step = ctx.steps(state)[state.step]
    added = extend_wave(state.group, ctx.fleet.nodes, step, state.targeted)
    if not added and kind == "wave.extended":
        return state, ()
    new = replace(state, targeted=tuple(sorted({*state.targeted, *added})))
    return new, (event(new, ctx, kind, nodes=added),)


def begin_wave(state: RolloutState, ctx: Context, step: int) -> Moved:
    """Start step ``step``: its wave, its deadline (B3)."""
    waving = replace(
        state,
        phase=Phase.WAVING,
        step=step,
        wave_started_at=ctx.now,
        wave_deadline=ctx.now + WAVE_TIMEOUT,
        bake_until=None,
    )
    return top_up(waving, ctx, "wave.started")


def begin_bake(state: RolloutState, ctx: Context) -> Moved:
    """B2: the bake ends at an absolute time."""
    bake = dt.timedelta(seconds=ctx.steps(state)[state.step].bake_seconds)
    baking = replace(state, phase=Phase.BAKING, wave_deadline=None, bake_until=ctx.now + bake)
    return baking, (event(baking, ctx, "bake.started"),)


def end_bake(state: RolloutState, ctx: Context) -> Moved:
    """B4 + A1: the next step, an approval wait, or the end."""
    done = event(state, ctx, "bake.done")
    last = len(ctx.steps(state)) - 1
    if state.step >= last:
        completed = replace(state, phase=Phase.COMPLETED, bake_until=None)
        return completed, (done, event(completed, ctx, "rollout.completed"))
    if ctx.policy.approval == "manual":
        waiting = replace(state, phase=Phase.AWAITING_APPROVAL, bake_until=None)
        return waiting, (done, event(waiting, ctx, "approval.required", step=state.step + 1))
    nxt, events = begin_wave(state, ctx, state.step + 1)
    return nxt, (done, *events)


def pause(state: RolloutState, ctx: Context, reason: str, actor: str | None) -> Moved:
    """A2/R4: hold everything; the clocks stop."""
    paused = replace(
        state, phase=Phase.PAUSED, paused_at=ctx.now, paused_from=state.phase, reason=reason
    )
    return paused, (event(paused, ctx, "rollout.paused", actor=actor, reason=reason),)


def resume(state: RolloutState, ctx: Context, reason: str, actor: str) -> Moved:
    """A3: back where it paused; a wave gets a fresh deadline, a bake its remaining time."""
    before = state.paused_from or Phase.WAVING
    paused_at = state.paused_at or ctx.now
    wave_deadline = state.wave_deadline
    bake_until = state.bake_until
    if before is Phase.WAVING:
        wave_deadline = ctx.now + WAVE_TIMEOUT
    if before is Phase.BAKING and bake_until is not None:
        bake_until = ctx.now + max(bake_until - paused_at, dt.timedelta(0))
    resumed = replace(
        state,
        phase=before,
        paused_at=None,
        paused_from=None,
        reason="",
        wave_deadline=wave_deadline,
        bake_until=bake_until,
    )
    return resumed, (event(resumed, ctx, "rollout.resumed", actor=actor, reason=reason),)


def roll_back(state: RolloutState, ctx: Context, reason: str) -> Moved:
    """R2/R5: ask for a rollback Release, or (first Release) stop where it is."""
    if state.stable is None:
        aborted = replace(
            state,
            phase=Phase.ABORTED,
            reason=reason,
            bake_until=None,
            wave_deadline=None,
            paused_at=None,
            paused_from=None,
        )
        return aborted, ()
    rolling = replace(
        state,
        phase=Phase.ROLLING_BACK,
        reason=reason,
        bake_until=None,
        wave_deadline=None,
        paused_at=None,
        paused_from=None,
    )
    return rolling, ()


def fail(state: RolloutState, ctx: Context, reason: str, readings: tuple[Reading, ...]) -> Moved:
    """R1: record the breach, then run ``onFailure`` (R2, R4, R5)."""
    breached = event(state, ctx, "guard.breached", reason=reason, readings=readings)
    if ctx.policy.on_failure == "pause" or state.stable is None:
        why = (
            reason
            if state.stable is not None
            else f"{reason}; first Release: nothing to roll back to"
        )
        paused, events = pause(state, ctx, why, None)
        return paused, (breached, *events)
    rolling, events = roll_back(state, ctx, reason)
    return rolling, (breached, *events)
