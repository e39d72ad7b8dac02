"""What the rollout page shows of one Group: waves, transitions, history, commands that apply.

Example::

    view = load_rollout_page(engine, "checkout", now())   # None: the Group has no rollout
    view.waves[0].started, view.transitions[0].action      # "2026-12-02T08:00:02Z", "wave.started"
    view.commands                                          # ("pause", "abort", "promote")

Invariants:

1. The status is the API's (:func:`konorkestra.center.rollouts.control.load` and
   :func:`~konorkestra.center.rollouts.status.status_json`), and so are the
   earlier rollouts (:func:`~konorkestra.center.rollouts.control.history_json`,
   the newest :data:`HISTORY`); the fleet is read through the overview's cache and
   the store's fleet memories (only new report rows:
   :mod:`konorkestra.center.rollouts.fleetmemory`).
2. Transitions are the audit events that name one of those rollouts' Releases
   (``details.release``: what the runner records per engine event) or the
   Group (``details.group``, e.g. ``release.created``), except the per-process
   ``node.*`` acks; newest first, at most :data:`MAX_TRANSITIONS` (``capped``
   says when there were more), found among the newest :data:`SEARCHED` audit
   records (``searched_all`` says whether that was the whole log). Two queries:
   the newest ``seq``, then a scan by ``seq`` bounded by that window whatever
   the log's size (the audit table has no index on its details).
3. A wave started at its newest ``wave.started`` of the current Release and
   finished at its ``bake.done`` (a completed rollout's waves without one
   finished when it completed, e.g. on ``promote``).
4. ``commands`` are those the engine would accept now
   (:func:`konorkestra.rollout.command_error`, rule A6), in the engine's order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.rollouts.control import fleet_memories, history_json, load
from konorkestra.center.rollouts.status import status_json
from konorkestra.center.store import schema
from konorkestra.center.store.audit import AuditEvent, audit_event
from konorkestra.center.store.engine import reader
from konorkestra.center.ui.overview_data import fleets_of
from konorkestra.rollout import Command, RolloutState, command_error
from konorkestra.rollout.inputs import COMMANDS, CommandKind

HISTORY = 10
"""Earlier rollouts shown."""
MAX_TRANSITIONS = 200
"""Transitions shown at most (the newest)."""
SEARCHED = 50_000
"""Audit records searched at most for transitions (the newest)."""


def transitions(
    conn: Connection,
    group: str,
    releases: list[str],
    limit: int = MAX_TRANSITIONS,
    searched: int = SEARCHED,
) -> tuple[list[AuditEvent], bool]:
    """Invariant 2: at most ``limit`` audit events of the Group's rollouts, newest first,
    among the newest ``searched`` records; and whether those were all the records."""
    a = schema.audit
    top = int(conn.execute(sa.select(sa.func.max(a.c.seq))).scalar() or 0)
    release = a.c.details["release"].as_string()
    named = a.c.details["group"].as_string()
    query = (
        sa.select(a)
        .where(a.c.seq > top - searched, ~a.c.action.like("node.%"))
        .where(sa.or_(release.in_(releases), named == group))
        .order_by(a.c.seq.desc())
        .limit(limit)
    )
    return [audit_event(r._mapping) for r in conn.execute(query)], top <= searched


@dataclass(frozen=True)
class Wave:
    """One wave of the current rollout (the status's wave with its times)."""

    step: int
    percent: int
    state: str
    nodes: int
    committed: int
    applied: int
    failed: int
    stale: int
    started: str | None
    finished: str | None


def waves_of(status: dict[str, Any], events: list[AuditEvent]) -> list[Wave]:
    """Invariant 3 (pure): the status's waves with when each started and finished."""
    release = status["release"]["id"]
    started: dict[int, str] = {}
    finished: dict[int, str] = {}
    completed = None
    for e in reversed(events):  # oldest first: the newest time wins
        if e.details.get("release") != release:
            continue
        step = e.details.get("step")
        if e.action == "wave.started" and isinstance(step, int):
            started[step] = e.at
        elif e.action == "bake.done" and isinstance(step, int):
            finished[step] = e.at
        elif e.action == "rollout.completed":
            completed = e.at
    out = []
    for w in status["waves"]:
        step = int(w["step"])
        end = finished.get(step) or (completed if w["state"] == "done" else None)
        out.append(Wave(step, int(w["percent"]), str(w["state"]), int(w["nodes"]),
                        int(w["committed"]), int(w["applied"]), int(w["failed"]),
                        int(w["stale"]), started.get(step), end))  # fmt: skip
    return out


def applicable(state: RolloutState, actor: str) -> tuple[CommandKind, ...]:
    """Invariant 4: the commands the engine would accept from ``actor`` now."""
    return tuple(k for k in COMMANDS if command_error(state, Command(k, actor)) is None)


@dataclass(frozen=True)
class RolloutPage:
    group: str
    status: dict[str, Any]
    history: list[dict[str, Any]]
    waves: list[Wave]
    transitions: list[AuditEvent]
    capped: bool
    searched_all: bool
    commands: tuple[CommandKind, ...]


def load_rollout_page(
    engine: Engine, group: str, now: dt.datetime, actor: str = ""
) -> RolloutPage | None:
    """The Group's rollout page (None when it has no rollout): a fixed number of queries."""
    loaded = load(
        engine, group, rows=HISTORY + 1, cache=fleets_of(engine), memories=fleet_memories(engine)
    )
    if loaded is None:
        return None
    status = status_json(loaded.row, loaded.policy, loaded.fleet, now)
    with reader(engine).connect() as conn:
        ids = [str(r.release_id) for r in loaded.rows]
        events, searched_all = transitions(conn, group, ids, MAX_TRANSITIONS + 1)
    capped = len(events) > MAX_TRANSITIONS
    events = events[:MAX_TRANSITIONS]
    return RolloutPage(
        group,
        status,
        history_json(loaded.rows[1:]),
        waves_of(status, events),
        events,
        capped,
        searched_all,
        applicable(loaded.row.state, actor),
    )
