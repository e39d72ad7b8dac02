"""Rollouts and operator commands in the store: rows in, engine values out.

Example::

    row = current(conn, "checkout")              # the Group's latest rollout, or None
    write(conn, row, decision, now)              # optimistic: False if someone moved it
    queue(conn, "checkout", row.release_id, Command("approve", "alice"), now)

Invariants:

* One ``rollouts`` row per rolled-out Release; a Group's *current* rollout is
  its row with the highest id. A row is written only by the runner, and only
  when its ``revision`` is still the one the runner read (so two runners, or
  a runner and a restored backup, can never interleave their decisions);
  every write bumps the revision by one.
* A rollout a newer Release superseded keeps its last state, and its row's
  ``phase`` column says ``superseded``.
* ``next_at`` is the decision's next deadline (the wave deadline while waving,
  the bake end while baking), so a restarted runner knows when to look again.
* The state column is exactly :meth:`RolloutState.to_json`; a row that does not
  read back is a :class:`~konorkestra.rollout.StateError`, never a guess.
* Every event a decision emits becomes one audit record in the same
  transaction as the state it led to (``rollout.started``, ``wave.started``,
  ``guard.breached`` with the readings, ``approval.granted`` with the actor…).
* Commands are applied in ``id`` order, each once: ``done_at`` and
  ``outcome`` (``applied`` or why not) are set in the transaction that applied it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from konorkestra.center.store import audit, schema
from konorkestra.center.store.engine import utc
from konorkestra.model.types import GroupName, ReleaseId
from konorkestra.rollout import Command, Decision, Event, Phase, Reading, RolloutState
from konorkestra.rollout.inputs import COMMANDS

RO, RC = schema.rollouts, schema.rollout_commands
SUPERSEDED = "superseded"
"""The stored phase of a rollout a newer Release replaced (its state keeps the phase it had)."""
RUNNER = "center:rollout"
"""The audit actor of decisions no operator made."""


@dataclass(frozen=True)
class RolloutRow:
    """A stored rollout."""

    id: int
    state: RolloutState
    readings: tuple[Reading, ...]
    revision: int
    next_at: dt.datetime | None
    created_at: dt.datetime
    phase: str = ""
    """The stored phase: the state's, or ``superseded`` once a newer Release replaced it."""

    @property
    def group(self) -> GroupName:
        return self.state.group

    @property
    def release_id(self) -> ReleaseId:
        return self.state.release.id


@dataclass(frozen=True)
class QueuedCommand:
    id: int
    release_id: ReleaseId
    command: Command


def _row(m: RowMapping) -> RolloutRow:
    return RolloutRow(
        id=int(m["id"]),
        state=RolloutState.from_json(m["state"]),
        readings=tuple(reading_from_json(r) for r in m["readings"] or ()),
        revision=int(m["revision"]),
        next_at=utc(m["next_at"]),
        created_at=utc(m["created_at"]) or dt.datetime.min.replace(tzinfo=dt.UTC),
        phase=str(m["phase"]),
    )


def current(conn: Connection, group: str) -> RolloutRow | None:
    """The Group's latest rollout."""
    found = conn.execute(
        sa.select(RO).where(RO.c.group == group).order_by(RO.c.id.desc()).limit(1)
    ).first()
    return None if found is None else _row(found._mapping)


def current_all(conn: Connection, groups: Iterable[str] | None = None) -> dict[str, RolloutRow]:
    """Every Group's latest rollout (or those of ``groups``), by Group."""
    top = sa.select(sa.func.max(RO.c.id).label("id")).group_by(RO.c.group)
    if groups is not None:
        top = top.where(RO.c.group.in_(list(groups)))
    rows = conn.execute(sa.select(RO).where(RO.c.id.in_(top.scalar_subquery()))).all()
    return {r._mapping["group"]: _row(r._mapping) for r in rows}


def rollout_marks(conn: Connection, groups: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Each of ``groups``' latest rollout row as ``(id, revision)``: equal marks, equal
    state (every write bumps the revision), without reading the state itself."""
    top = sa.select(sa.func.max(RO.c.id)).where(RO.c.group.in_(list(groups))).group_by(RO.c.group)
    rows = conn.execute(
        sa.select(RO.c.group, RO.c.id, RO.c.revision).where(RO.c.id.in_(top.scalar_subquery()))
    ).all()
    return {r.group: (int(r.id), int(r.revision)) for r in rows}


def by_release(conn: Connection, release_id: str) -> RolloutRow | None:
    found = conn.execute(sa.select(RO).where(RO.c.release_id == release_id)).first()
    return None if found is None else _row(found._mapping)


def history(conn: Connection, group: str, limit: int = 20) -> list[RolloutRow]:
    """The Group's rollouts, newest first."""
    rows = conn.execute(
        sa.select(RO).where(RO.c.group == group).order_by(RO.c.id.desc()).limit(limit)
    ).all()
    return [_row(r._mapping) for r in rows]


def next_at(state: RolloutState) -> dt.datetime | None:
    """When time alone will move ``state`` next (None: only reports or commands will)."""
    if state.phase is Phase.WAVING:
        return state.wave_deadline
    if state.phase is Phase.BAKING:
        return state.bake_until
    return None


def write(conn: Connection, row: RolloutRow | None, decision: Decision, now: dt.datetime) -> bool:
    """Store ``decision`` (a new row when ``row`` is None or of another Release) and audit
    its events; False, writing nothing, when ``row`` was moved since it was read."""
    state = decision.state
    values = {
        "phase": state.phase.value,
        "state": state.to_json(),
        "readings": [reading_json(r) for r in decision.readings],
        "next_at": next_at(state),
        "updated_at": now,
    }
    if row is not None and row.release_id == state.release.id:
        done = conn.execute(
            sa.update(RO)
            .where(RO.c.id == row.id, RO.c.revision == row.revision)
            .values(revision=row.revision + 1, **values)
        )
        if done.rowcount != 1:
            return False
    else:
        if row is not None and not row.state.terminal:  # S5: the newer Release replaced it
            conn.execute(
                sa.update(RO)
                .where(RO.c.id == row.id)
                .values(phase=SUPERSEDED, revision=row.revision + 1, next_at=None, updated_at=now)
            )
        conn.execute(
            sa.insert(RO).values(
                group=state.group, release_id=state.release.id, revision=1, created_at=now, **values
            )
        )
    record_events(conn, decision.events)
    return True


def record_events(conn: Connection, events: Iterable[Event]) -> None:
    """One audit record per event, the operator as actor where one acted."""
    for e in events:
        details = {k: v for k, v in e.to_json().items() if k != "kind"}
        audit.append(conn, e.actor or RUNNER, e.kind, details)


def reading_json(r: Reading) -> dict[str, Any]:
    return {"signal": r.signal, "threshold": r.threshold, "value": r.value,
            "status": r.status, "detail": r.detail}  # fmt: skip


def reading_from_json(d: Mapping[str, Any]) -> Reading:
    value = d.get("value")
    return Reading(
        str(d["signal"]),
        float(d["threshold"]),
        None if value is None else float(value),
        d["status"],
        str(d.get("detail") or ""),
    )


def queue(conn: Connection, group: str, release_id: str, command: Command, now: dt.datetime) -> int:
    """Queue ``command`` for the rollout of ``release_id``; its id."""
    result = conn.execute(
        sa.insert(RC).values(
            group=group,
            release_id=release_id,
            kind=command.kind,
            actor=command.actor,
            reason=command.reason,
            created_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def pending(conn: Connection, group: str) -> list[QueuedCommand]:
    """The Group's commands not applied yet, oldest first."""
    rows = conn.execute(
        sa.select(RC.c.id, RC.c.release_id, RC.c.kind, RC.c.actor, RC.c.reason)
        .where(RC.c.group == group, RC.c.done_at.is_(None))
        .order_by(RC.c.id)
    ).all()
    out = []
    for r in rows:
        if r.kind in COMMANDS:
            command = Command(r.kind, r.actor, r.reason)
            out.append(QueuedCommand(int(r.id), ReleaseId(r.release_id), command))
    return out


def pending_groups(conn: Connection) -> set[str]:
    return {g for (g,) in conn.execute(sa.select(RC.c.group).where(RC.c.done_at.is_(None)))}


def finish(conn: Connection, command_id: int, outcome: str, now: dt.datetime) -> None:
    conn.execute(sa.update(RC).where(RC.c.id == command_id).values(done_at=now, outcome=outcome))


def reject(conn: Connection, queued: QueuedCommand, reason: str, now: dt.datetime) -> None:
    """Mark ``queued`` rejected before the engine saw it, and audit that (A6)."""
    finish(conn, queued.id, reason, now)
    command = queued.command
    details = {
        "release": queued.release_id,
        "command": command.kind,
        "reason": f"{command.kind}: {reason}",
        "operator_reason": command.reason,
    }
    audit.append(conn, command.actor, "command.rejected", details)


def outcome(conn: Connection, command_id: int) -> str | None:
    """``applied``, the rejection, or None while the command waits."""
    found = conn.execute(sa.select(RC.c.outcome).where(RC.c.id == command_id)).scalar()
    return None if found is None else str(found)
