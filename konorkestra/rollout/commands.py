"""Operator commands: approve, pause, resume, abort, promote — each audited with its actor.

Example::

    error = command_error(state, Command("approve", "alice"))   # the API's 409, up front
    decision = decide(state, policy, fleet, now, [Command("approve", "alice", "canary ok")])

Rules (each has a test named after it in ``tests/rollout/test_commands.py``):

A1  ``approval: manual`` holds the rollout in ``awaiting_approval`` before every
    step after the first (``approval.required``) until ``approve``
    (``approval.granted`` with actor and reason; the next wave starts at once).
    The first step starts on its own; ``approval: auto`` never waits.
A2  ``pause`` (from waving, baking or awaiting approval): nothing is added to or
    taken from the target set, the guards are not read, the clocks stop.
A3  ``resume`` (from paused): back to the phase it paused in; a wave gets a
    fresh deadline (now + the wave timeout), a bake keeps the time it had left;
    the guards are read again in the same decision.
A4  ``abort`` (any phase before the end, except while a rollback is being
    signed): ``rollout.aborted`` with actor and reason, then a rollback (R2); a
    Group's first Release has nothing to roll back to and ends ``aborted``.
A5  ``promote`` (same phases as abort): every enrolled node is targeted at
    once, remaining bakes, approvals and guards are skipped (the operator
    overrides them, as Argo Rollouts' ``promote --full``), and the rollout
    completes: ``rollout.promoted`` then ``rollout.completed``.
A6  A command that does not apply in the current phase changes nothing; it is
    recorded as ``command.rejected`` with the reason, and
    :func:`command_error` gives the same answer before the command is queued.
A7  Commands apply in the order given, before the time rules of the same
    decision.

Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

from dataclasses import replace

from konorkestra.rollout.inputs import Command
from konorkestra.rollout.state import ACTIVE, Approval, Phase, RolloutState
from konorkestra.rollout.transitions import (
    Context,
    Moved,
    begin_wave,
    event,
    pause,
    resume,
    roll_back,
)


def command_error(state: RolloutState, command: Command) -> str | None:
    """A6: why ``command`` cannot apply to ``state`` now, or None when it can."""
    if state.terminal:
        return f"the rollout of {state.release.id} has ended ({state.phase.value})"
    if state.phase is Phase.ROLLING_BACK:
        return "a rollback is being signed"
    if command.kind == "approve" and state.phase is not Phase.AWAITING_APPROVAL:
        return f"nothing awaits approval (the rollout is {state.phase.value})"
    if command.kind == "pause" and state.phase not in ACTIVE:
        return f"the rollout is {state.phase.value}, not running"
    if command.kind == "resume" and state.phase is not Phase.PAUSED:
        return f"the rollout is {state.phase.value}, not paused"
    return None


def apply_command(state: RolloutState, ctx: Context, command: Command) -> Moved:
    """A1-A6: one command's effect."""
    error = command_error(state, command)
    if error is not None:
        rejected = event(
            state, ctx, "command.rejected", actor=command.actor, reason=f"{command.kind}: {error}"
        )
        return state, (rejected,)
    if command.kind == "approve":
        nxt = state.step + 1
        approved = replace(
            state,
            approvals=(*state.approvals, Approval(nxt, command.actor, command.reason, ctx.now)),
        )
        granted = event(
            approved, ctx, "approval.granted", step=nxt, actor=command.actor, reason=command.reason
        )
        waving, events = begin_wave(approved, ctx, nxt)
        return waving, (granted, *events)
    if command.kind == "pause":
        return pause(state, ctx, command.reason, command.actor)
    if command.kind == "resume":
        return resume(state, ctx, command.reason, command.actor)
    if command.kind == "abort":
        aborted = event(state, ctx, "rollout.aborted", actor=command.actor, reason=command.reason)
        why = f"aborted by {command.actor}" + (f": {command.reason}" if command.reason else "")
        rolled, events = roll_back(state, ctx, why)
        return rolled, (aborted, *events)
    return promote(state, ctx, command)


def promote(state: RolloutState, ctx: Context, command: Command) -> Moved:
    """A5."""
    added = tuple(sorted(ctx.fleet.ids - set(state.targeted)))
    done = replace(
        state,
        phase=Phase.COMPLETED,
        step=len(ctx.steps(state)) - 1,
        targeted=tuple(sorted({*state.targeted, *added})),
        wave_deadline=None,
        bake_until=None,
        paused_at=None,
        paused_from=None,
        reason=command.reason,
    )
    return done, (
        event(
            done, ctx, "rollout.promoted", actor=command.actor, reason=command.reason, nodes=added
        ),
        event(done, ctx, "rollout.completed", actor=command.actor, reason=command.reason),
    )
