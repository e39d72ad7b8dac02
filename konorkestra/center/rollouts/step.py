"""One decision for one Group: read the store, ask the engine, write the outcome.

Example::

    moved = step_group(engine, releaser, "checkout", now())
    if moved.changed:
        notifier.released("checkout", 0)       # parked long-polls re-read their desired state

The engine (:mod:`konorkestra.rollout`) decides; this module only reads its
inputs and stores its answer.

Invariants:

* Every Release of a Group gets a rollout, except rollback Releases (which
  belong to the rollout that asked for them): the newest Release without one
  starts a rollout from the last one's next stable Release, or supersedes the
  one that runs (S5). A Group's first Release starts from nothing (W6).
* Inputs are read on a read connection (no write lock); the outcome is written
  in one write transaction that first checks that neither the rollout's
  revision nor the Group's newest Release moved meanwhile. If either did, nothing
  is written and the caller asks again (:attr:`Moved.retry`).
* A rollback Release is signed in the same write transaction as the decision
  that asked for it, and the engine is told at once (R2, R3): a
  ``rolling_back`` state is never stored, so no other Release can take the
  sequence between the bad Release and its rollback.
* Commands apply one per decision, in queue order, each marked ``applied`` or
  with the engine's reason for rejecting it (A6). A command for a Release that
  is no longer the Group's rollout is rejected as superseded. Every rejection
  is audited (``command.rejected``, with the operator as actor).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.releases.rows import RELEASE_COLUMNS, release_from_row
from konorkestra.center.releases.signer import ReleasePlan, Releaser
from konorkestra.center.rollouts import store
from konorkestra.center.rollouts.fleet import MetricMemory, load_fleet, needs_metrics
from konorkestra.center.rollouts.fleetmemory import FleetMemories
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.model.definitions import Policy
from konorkestra.model.release import Release
from konorkestra.model.types import GroupName, JsonObject
from konorkestra.rollout import (
    Decision,
    Fleet,
    ReleaseRef,
    RolloutError,
    command_error,
    decide,
    rollback_signed,
    start,
    supersede,
)

log = logging.getLogger(__name__)
R = schema.releases


@dataclass(frozen=True)
class Moved:
    """What one step did."""

    group: str
    changed: bool = False
    """The Group's desired state may differ: wake its long-polls."""
    retry: bool = False
    """Something moved while deciding; nothing was written."""
    next_at: dt.datetime | None = None
    active: bool = False
    """A rollout of the Group is still running (waving, baking, waiting or paused)."""
    released: tuple[Release, ...] = ()
    """Releases signed by this step (rollbacks), to announce after the commit."""


@dataclass(frozen=True)
class Quiet:
    """A Group's last decision that changed nothing: what it was decided on."""

    revision: int
    fleet: Fleet
    next_at: dt.datetime | None

    def still(self, revision: int, fleet: Fleet, now: dt.datetime) -> bool:
        """True when deciding again on these inputs at ``now`` would change nothing."""
        due = self.next_at is not None and now >= self.next_at
        return revision == self.revision and fleet is self.fleet and not due


def ref(release: Release) -> ReleaseRef:
    return ReleaseRef(release.id, release.sequence)


def release_and_policy(conn: Connection, release_id: str) -> tuple[Release, JsonObject]:
    """A Release and the canonical Policy body signed beside it."""
    row = conn.execute(
        sa.select(*RELEASE_COLUMNS).where(R.c.id == release_id)
    ).one()._mapping  # fmt: skip
    stored: Mapping[str, Any] = row["policy"]
    return release_from_row(row), dict(stored["body"])


def policy_of(body: JsonObject) -> Policy:
    return Policy.from_spec(str(body["metadata"]["name"]), body["spec"])


def latest(conn: Connection, group: str) -> Release | None:
    row = conn.execute(
        sa.select(*RELEASE_COLUMNS).where(R.c.group == group).order_by(R.c.sequence.desc()).limit(1)
    ).first()
    return None if row is None else release_from_row(row._mapping)


def needs_rollout(newest: Release | None, row: store.RolloutRow | None) -> bool:
    """``newest`` (the Group's newest Release) has no rollout yet: there is none, or the
    current one is of an older Release and ``newest`` is not that rollout's rollback."""
    if newest is None:
        return False
    if row is None:
        return True
    rolled = row.state.rollback
    is_rollback = rolled is not None and rolled.id == newest.id
    return newest.sequence > row.state.release.sequence and not is_rollback


def step_group(
    engine: Engine,
    releaser: Releaser,
    group: str,
    now: dt.datetime,
    memory: MetricMemory | None = None,
    fleets: FleetMemories | None = None,
    quiet: dict[str, Quiet] | None = None,
) -> Moved:
    """Decide once for ``group`` and store the outcome (see the module's invariants).

    With ``fleets``, a running rollout whose Policy reads no app metrics takes its
    fleet from there (equal to ``load_fleet``, read incrementally: a pass after a
    few new reports re-folds only their nodes). With ``quiet`` as well, a Group whose
    last decision changed nothing is not decided again while its rollout row, its
    fleet (the same object: no new report, no enrolled node) and the queue are
    unchanged and its next deadline has not come: the engine is a pure function
    of those and the time, and time only matters at the deadlines it stored."""
    with reader(engine).connect() as conn:
        newest = latest(conn, group)
        row = store.current(conn, group)
        commands = store.pending(conn, group)
        engine_judged: int | None = None  # the command the engine itself audits, if any
        if needs_rollout(newest, row):
            assert newest is not None
            decision, policy, fleet = _begin(conn, group, newest, row, now, memory)
            outcomes = {
                c.id: f"the rollout of {c.release_id} was superseded by {newest.id}"
                for c in commands
            }
        elif row is not None and not row.state.terminal:
            _, body = release_and_policy(conn, row.release_id)
            policy = policy_of(body)
            metrics = needs_metrics(policy)
            if fleets is not None and not metrics:
                fleet = fleets.fleet(engine, group, row.release_id, since=row.state.started_at,
                                     metrics=False)  # fmt: skip
                last = None if quiet is None or commands else quiet.get(group)
                if last is not None and last.still(row.revision, fleet, now):
                    return Moved(group, next_at=last.next_at, active=True)
            else:
                fleet = load_fleet(conn, group, row.release_id, since=row.state.started_at,
                                   metrics=metrics, memory=memory)  # fmt: skip
            outcomes = {}
            first = commands[0] if commands else None
            if first is not None and first.release_id != row.release_id:
                outcomes[first.id] = f"the rollout of {first.release_id} has been superseded"
                first = None
            elif first is not None:
                outcomes[first.id] = command_error(row.state, first.command) or "applied"
            decision = decide(row.state, policy, fleet, now, [first.command] if first else [])
            engine_judged = None if first is None else first.id
        else:
            outcomes = {c.id: _no_rollout(c.release_id, row) for c in commands}
            decision = None
    queued = {c.id: c for c in commands}

    def finish_all(conn: Connection) -> None:
        for command_id, text in outcomes.items():
            if command_id == engine_judged:
                store.finish(conn, command_id, text, now)
            else:  # dropped before the engine saw it: audited here
                store.reject(conn, queued[command_id], text, now)

    if decision is None:
        if outcomes:
            with engine.begin() as conn:
                finish_all(conn)
        return Moved(group)
    if not decision.readings and row is not None and row.release_id == decision.state.release.id:
        # Guards are not read while paused or after the end: keep the last readings (V5).
        decision = replace(decision, readings=row.readings)
    unchanged = (
        row is not None
        and row.release_id == decision.state.release.id
        and not decision.events
        and not outcomes
        and tuple(decision.readings) == row.readings
        and row.state.to_json() | {"updated_at": None}
        == decision.state.to_json() | {"updated_at": None}
    )
    if unchanged:
        next_at = store.next_at(decision.state)
        if quiet is not None and row is not None:
            quiet[group] = Quiet(row.revision, fleet, next_at)
        return Moved(group, next_at=next_at, active=True)
    signed: tuple[Release, ...] = ()
    with engine.begin() as conn:
        again = store.current(conn, group)
        moved_newest = latest(conn, group)
        if (
            (again is None) != (row is None)
            or (again is not None and row is not None and again.revision != row.revision)
            or (moved_newest is not None and newest is not None and moved_newest.id != newest.id)
        ):
            return Moved(group, retry=True)
        request = decision.rollback
        if request is not None:
            rollback = _sign_rollback(conn, releaser, request.restore.id, request.reason)
            done = rollback_signed(decision.state, policy, fleet, now, ref(rollback))
            decision = Decision(
                done.state, (*decision.events, *done.events), done.desired, decision.readings
            )
            signed = (rollback,)
        if not store.write(conn, row, decision, now):
            raise RuntimeError("rollout row moved inside its own transaction")
        finish_all(conn)
    return Moved(
        group,
        changed=True,
        next_at=store.next_at(decision.state),
        active=not decision.state.terminal,
        released=signed,
    )


def _begin(
    conn: Connection,
    group: str,
    newest: Release,
    row: store.RolloutRow | None,
    now: dt.datetime,
    memory: MetricMemory | None,
) -> tuple[Decision, Policy, Fleet]:
    _, body = release_and_policy(conn, newest.id)
    policy = policy_of(body)
    fleet = load_fleet(conn, group, newest.id, since=now, metrics=needs_metrics(policy),
                       memory=memory)  # fmt: skip
    g = GroupName(group)
    if row is None:
        return start(g, policy, ref(newest), None, fleet, now), policy, fleet
    if row.state.terminal:
        stable = row.state.next_stable()
        if stable is not None and stable.sequence >= newest.sequence:
            raise RolloutError(f"{newest.id} is not newer than the stable {stable.id}")
        return start(g, policy, ref(newest), stable, fleet, now), policy, fleet
    return supersede(row.state, policy, ref(newest), fleet, now), policy, fleet


def _no_rollout(release_id: str, row: store.RolloutRow | None) -> str:
    if row is None:
        return "the group has no rollout"
    if row.release_id != release_id:
        return f"the rollout of {release_id} has been superseded"
    return f"the rollout of {release_id} has ended ({row.state.phase.value})"


def _sign_rollback(conn: Connection, releaser: Releaser, restore_id: str, reason: str) -> Release:
    """R2: a new Release with ``restore_id``'s content; the Releaser takes the next sequence
    and names the newest Release (the bad one) as its predecessor."""
    stable, body = release_and_policy(conn, restore_id)
    plan = ReleasePlan(
        group=stable.group,
        members=stable.configsets,
        policy=stable.policy,
        policy_body=body,
        source_commit=stable.commit or "",
        author=store.RUNNER,
        committed_at=stable.created_at,
        created_by=store.RUNNER,
        origin="rollback",
        reason=f"rollback to the content of {stable.id}: {reason}",
    )
    log.warning("rolling back %s to the content of %s: %s", stable.group, stable.id, reason)
    return releaser.insert(conn, plan)
