"""The rollout engine: from a state, the Policy, the fleet, commands and ``now``, the next decision.

Example::

    d = start(group, policy, release=new, stable=old, fleet=fleet, now=now)
    store(d.state.to_json()); audit(d.events); deliver(d.desired)
    ...                                                   # every report, command or tick:
    d = decide(d.state, policy, fleet, now, commands)
    if d.rollback:                                        # sign restore's content, previous=bad
        d = rollback_signed(d.state, policy, fleet, now, sign(d.rollback))

Rules (each has a test named after it: B, D, S2, S3 in ``tests/rollout/test_engine.py``,
R in ``test_rollback.py``, S5, S6 in ``test_supersede.py``; the invariants they add up
to are checked under random fleets, reports, commands and time in
``test_invariants.py``):

B1  A wave is complete when every enrolled node in it committed the new
    Release, every process watching the Group there acked it (applied or
    failed), and no guard waits for data (G6).
B2  The bake starts when the wave is complete and ends at an absolute time,
    ``now + bake``; a zero bake ends in the same decision.
B3  A wave not complete by its deadline (wave start + ``WAVE_TIMEOUT``, 10
    min) is a failure with reason ``wave deadline``; guards read ``final``.
B4  A bake ends at ``bake_until`` when every guard passes (``final``: missing
    data is a breach); then the next step starts, or approval is required
    (A1), or after the last step the rollout completes.
B5  Targets grow only while a wave runs: each decision tops the current wave
    up (W4), so a node that joins mid-wave gets the new Release if its place
    falls inside the wave and there is room; a node that joins during a bake,
    an approval wait or a pause keeps the stable Release for now. A Group's
    first Release has no stable Release to keep: its one 100 % wave is topped
    up in every running phase (waving, baking), so a node that joins during
    its bake gets it rather than nothing.
B6  A wave with no enrolled node in it (the Group has none yet) before the
    last step waits for nodes: nothing is exposed, so nothing can be judged —
    it does not complete, bake, wait for approval or fail its deadline (no
    operator approves a canary that reached nobody). When the first nodes
    join, the wave takes them (W4) and its deadline restarts from then (``now
    + WAVE_TIMEOUT``; it only ever moves later, S3). The last step (100 %)
    holds nothing back, so its empty wave is complete as usual: a Group's
    first Release, or an ``all-at-once`` one, completes on a Group with no
    nodes, and every node that joins later gets it (D1).
R1  Guards are read in waving, baking and awaiting approval (a canary that
    turns bad while waiting for approval is caught before anyone approves
    it). A breach emits ``guard.breached`` with every reading and the reason,
    then runs ``onFailure``.
R2  ``rollback``: the rollout turns ``rolling_back`` and asks for a rollback
    Release (``rollback_request``: restore the stable content, previous = the
    bad one, a sequence above it) until :func:`rollback_signed`; meanwhile no
    node is told to take the new Release.
R3  Once the rollback Release is signed (``rollout.rolled_back``), every node
    ever targeted, including those carried over from superseded Releases,
    is told to take it; it is the Group's next stable (S4).
R4  ``pause``: the rollout pauses with the breach as its reason; only resume,
    abort or promote leave it.
R5  A Group's first Release has no stable content to restore: ``onFailure:
    rollback`` pauses instead, and ``abort`` ends in ``aborted``.
R6  After abort or rollback no node is ever told to take the new Release.
D1  Desired state per enrolled node: targeted nodes get the new Release while
    the rollout runs, waits or pauses; every other node keeps the stable one
    (None for a first Release: nothing to deliver). Completed: every node the
    new Release. Rolling back or aborted: targeted nodes None (hold what they
    have: agents refuse a lower sequence), the others stable.
S2  A decision is a function of its inputs: the same state, Policy, fleet,
    commands and ``now`` give the same decision. Time never runs backwards: a
    ``now`` before the state's last decision is taken as that time.
S3  Deadlines only move forward: within a step, ``wave_deadline`` and
    ``bake_until`` never decrease.
S5  A new Release mid-rollout supersedes the running one
    (``rollout.superseded``): it starts again at step one from the same stable
    Release. Nodes targeted by the superseded Release stay targeted — an Agent
    refuses a lower sequence, so they cannot go back to stable without a new
    signed Release, and the new Release is what the operator wants them on —
    and count toward the new wave, which is topped up from the usual order.
S6  Superseding needs a higher sequence, and is refused while a rollback is
    being signed or after the rollout ended (start a new one) — RolloutError.

Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from konorkestra.model.definitions import Policy
from konorkestra.model.types import GroupName, NodeId, ReleaseId
from konorkestra.rollout.commands import apply_command
from konorkestra.rollout.guards import Reading, exposure, guard_set, wave_complete
from konorkestra.rollout.inputs import Command, Fleet, ReleaseRef
from konorkestra.rollout.state import ACTIVE, Event, Phase, RollbackRequest, RolloutState
from konorkestra.rollout.transitions import (
    WAVE_TIMEOUT,
    Context,
    Moved,
    begin_bake,
    begin_wave,
    end_bake,
    event,
    fail,
    top_up,
)


class RolloutError(ValueError):
    """The caller asked for something the rollout's state does not allow (S6, R2)."""


@dataclass(frozen=True)
class Decision:
    """What the Center does now: persist ``state``, audit ``events``, deliver ``desired``."""

    state: RolloutState
    events: tuple[Event, ...]
    desired: Mapping[NodeId, ReleaseId | None]
    readings: tuple[Reading, ...] = ()
    """The guards' latest readings (for ``rollout status``)."""

    @property
    def rollback(self) -> RollbackRequest | None:
        return self.state.rollback_request()


def desired_for(state: RolloutState, node: NodeId) -> ReleaseId | None:
    """D1 for one enrolled node: the Release it should hold (None: nothing new to take)."""
    return _desired(state, node, state.targeted)


def desired_of(state: RolloutState, nodes: Iterable[NodeId]) -> dict[NodeId, ReleaseId | None]:
    """D1 for each of ``nodes`` (one set of the targets for all of them, not a scan each)."""
    targeted = frozenset(state.targeted)
    return {node: _desired(state, node, targeted) for node in nodes}


def desired(state: RolloutState, fleet: Fleet) -> dict[NodeId, ReleaseId | None]:
    """D1: the Release each enrolled node should hold for this Group."""
    return desired_of(state, sorted(fleet.ids))


def _desired(state: RolloutState, node: NodeId, targeted: Collection[NodeId]) -> ReleaseId | None:
    stable = None if state.stable is None else state.stable.id
    if state.phase is Phase.COMPLETED:
        return state.release.id
    if node not in targeted:
        return stable
    if state.phase is Phase.ROLLED_BACK and state.rollback is not None:
        return state.rollback.id
    if state.phase in (Phase.ROLLING_BACK, Phase.ABORTED, Phase.ROLLED_BACK):
        return None
    return state.release.id


def _advance(
    state: RolloutState, ctx: Context
) -> tuple[RolloutState, tuple[Event, ...], tuple[Reading, ...]]:
    """One time-driven move (B1-B6, R1), or none."""
    if state.phase not in ACTIVE:
        return state, (), ()
    events: tuple[Event, ...] = ()
    empty = ctx.fleet.ids.isdisjoint(state.targeted)
    if state.phase is Phase.WAVING or state.stable is None:
        state, events = top_up(state, ctx)
    if state.phase is Phase.WAVING and empty and state.step < len(ctx.steps(state)) - 1:
        if ctx.fleet.ids.isdisjoint(state.targeted):
            return state, events, ()  # B6: no node to expose yet
        restart = ctx.now + WAVE_TIMEOUT
        if state.wave_deadline is None or state.wave_deadline < restart:
            state = replace(state, wave_deadline=restart)
    view = exposure(ctx.fleet, state.targeted, state.release.id)
    deadline = state.phase is Phase.WAVING and _due(state.wave_deadline, ctx.now)
    bake_over = state.phase is Phase.BAKING and _due(state.bake_until, ctx.now)
    verdict = guard_set(ctx.policy.guards).read(view, final=deadline or bake_over)
    readings = verdict.readings
    if verdict.status == "breach":
        if deadline:
            reason = "wave deadline"
        elif bake_over and all(r.detail == "no data" for r in verdict.breached):
            reason = "no data at the end of the bake"
        else:
            reason = "guard " + ", ".join(r.signal for r in verdict.breached)
        moved, more = fail(state, ctx, reason, readings)
        return moved, (*events, *more), readings
    if state.phase is Phase.WAVING:
        if verdict.status == "pass" and wave_complete(view):
            moved, more = begin_bake(state, ctx)
            return moved, (*events, *more), readings
        if deadline:
            moved, more = fail(state, ctx, "wave deadline", readings)
            return moved, (*events, *more), readings
    if bake_over:
        moved, more = end_bake(state, ctx)
        return moved, (*events, *more), readings
    return state, events, readings


def _due(deadline: dt.datetime | None, now: dt.datetime) -> bool:
    return deadline is not None and now >= deadline


def _settle(state: RolloutState, ctx: Context, events: tuple[Event, ...]) -> Decision:
    """Apply time rules until nothing moves (a zero bake chains into the next wave)."""
    readings: tuple[Reading, ...] = ()
    for _ in range(4 * len(ctx.steps(state)) + 4):
        moved, more, seen = _advance(state, ctx)
        readings = seen or readings
        events = (*events, *more)
        if moved == state:
            break
        state = moved
    state = replace(state, updated_at=ctx.now)
    return Decision(state, events, desired(state, ctx.fleet), readings)


def start(
    group: GroupName,
    policy: Policy,
    release: ReleaseRef,
    stable: ReleaseRef | None,
    fleet: Fleet,
    now: dt.datetime,
    *,
    actor: str | None = None,
    reason: str = "",
) -> Decision:
    """A new rollout of ``release`` over ``fleet``, from ``stable`` (None: first Release, W6)."""
    if stable is not None and stable.sequence >= release.sequence:
        raise RolloutError(f"{release.id} is not newer than the stable {stable.id}")
    return _start(group, policy, release, stable, fleet, now, (), (), actor, reason, ())


def _start(
    group: GroupName,
    policy: Policy,
    release: ReleaseRef,
    stable: ReleaseRef | None,
    fleet: Fleet,
    now: dt.datetime,
    carried: tuple[NodeId, ...],
    superseded: tuple[ReleaseId, ...],
    actor: str | None,
    reason: str,
    before: tuple[Event, ...],
) -> Decision:
    ctx = Context(policy, fleet, now)
    state = RolloutState(
        group, release, stable, Phase.WAVING, 0, carried, now, now, superseded=superseded
    )
    started = event(state, ctx, "rollout.started", actor=actor, reason=reason, nodes=carried)
    waving, events = begin_wave(state, ctx, 0)
    return _settle(waving, ctx, (*before, started, *events))


def decide(
    state: RolloutState,
    policy: Policy,
    fleet: Fleet,
    now: dt.datetime,
    commands: Iterable[Command] = (),
) -> Decision:
    """S2: commands in order (A7), then the time rules, at ``max(now, state.updated_at)``."""
    ctx = Context(policy, fleet, max(now, state.updated_at))
    events: tuple[Event, ...] = ()
    for command in commands:
        state, more = apply_command(state, ctx, command)
        events = (*events, *more)
    return _settle(state, ctx, events)


def rollback_signed(
    state: RolloutState, policy: Policy, fleet: Fleet, now: dt.datetime, rollback: ReleaseRef
) -> Decision:
    """R3: the Center signed the requested rollback Release; deliver it to every exposed node."""
    ctx = Context(policy, fleet, max(now, state.updated_at))
    if state.phase is Phase.ROLLED_BACK and state.rollback == rollback:
        return Decision(state, (), desired(state, fleet))
    if state.phase is not Phase.ROLLING_BACK:
        raise RolloutError(f"the rollout is {state.phase.value}; no rollback was requested")
    if rollback.sequence <= state.release.sequence:
        raise RolloutError(f"rollback {rollback.id} must have a sequence above {state.release.id}")
    done = replace(state, phase=Phase.ROLLED_BACK, rollback=rollback, updated_at=ctx.now)
    rolled = event(
        done,
        ctx,
        "rollout.rolled_back",
        reason=state.reason,
        other=rollback.id,
        nodes=state.targeted,
    )
    return Decision(done, (rolled,), desired(done, fleet))


def supersede(
    state: RolloutState,
    policy: Policy,
    release: ReleaseRef,
    fleet: Fleet,
    now: dt.datetime,
    *,
    actor: str | None = None,
    reason: str = "",
) -> Decision:
    """S5/S6: ``release`` replaces the running rollout, from step one, carrying its targets."""
    if state.terminal:
        raise RolloutError(f"the rollout of {state.release.id} has ended; start a new one")
    if state.phase is Phase.ROLLING_BACK:
        raise RolloutError("a rollback is being signed; start the new Release after it")
    if release.sequence <= state.release.sequence:
        raise RolloutError(f"{release.id} is not newer than {state.release.id}")
    now = max(now, state.updated_at)
    old = Context(policy, fleet, now)
    superseded = event(
        state,
        old,
        "rollout.superseded",
        actor=actor,
        reason=reason,
        other=release.id,
        nodes=state.targeted,
    )
    return _start(
        state.group,
        policy,
        release,
        state.stable,
        fleet,
        now,
        state.targeted,
        (*state.superseded, state.release.id),
        actor,
        reason,
        (superseded,),
    )


__all__ = [
    "Decision",
    "Moved",
    "RolloutError",
    "decide",
    "desired",
    "desired_for",
    "desired_of",
    "rollback_signed",
    "start",
    "supersede",
]
