"""A rollout's status and steering it: what the API and the dashboard share.

Example::

    loaded = load(engine, "checkout", rows=11)   # the newest 11 rollouts, policy, fleet (or None)
    load(engine, "checkout", cache=fleets)       # a FleetCache: no fleet re-read while unchanged
    load(engine, "checkout", memories=fleet_memories(engine))   # only new reports read
    status_of(loaded, now())                     # the status GET /v1/rollouts/{group} shows
    done = await steer(engine, runner, "checkout", Command("approve", who.actor, "canary ok"))
    done.applied                                 # False: queued for another Center's runner

Invariants:

1. One status: :func:`rollout_status` is :func:`~konorkestra.center.rollouts.status.status_json`
   over the rows, Policy and fleet :func:`load` reads, in a fixed number of queries
   whatever the number of nodes. The API and the dashboard call it; neither recomputes it.
2. A command that cannot apply now (rule A6) is ``409 rollout_conflict`` with the
   engine's reason and the rollout's phase, before anything is queued; a Group
   without a rollout is 404; a Center without a runner is 503 (checked first).
3. With a :data:`FleetCache`, :func:`load` reuses a Group's fleet while the
   store has no new audit event and no new agent report (both ids only grow):
   a fleet changes only with a report row, or with a node enrolled, renewed or
   revoked, each audited. The rollout rows are read every time.
   With :class:`~konorkestra.center.rollouts.fleetmemory.FleetMemories` (one
   per store: :func:`fleet_memories`), a fleet that did change is read
   incrementally: only the report rows stored since, folded for their nodes
   alone, equal to a fresh read. The API's status reads through it too.
4. An accepted command is queued with its actor and applied by the one runner;
   :func:`steer` waits at most :data:`COMMAND_WAIT` seconds for the outcome:
   applied, or 409 with the runner's reason (the rollout moved in between). When
   this Center does not drive the rollouts the command stays queued
   (``applied`` is False).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.app.errors import ApiError, not_found
from konorkestra.center.app.web import db
from konorkestra.center.rollouts import store
from konorkestra.center.rollouts.fleet import load_fleet
from konorkestra.center.rollouts.fleetmemory import FleetMemories
from konorkestra.center.rollouts.runner import RolloutRunner
from konorkestra.center.rollouts.status import iso, status_json
from konorkestra.center.rollouts.step import policy_of, release_and_policy
from konorkestra.center.store import schema
from konorkestra.center.store.engine import now, reader
from konorkestra.model.definitions import Policy
from konorkestra.rollout import Command, Fleet, command_error

COMMAND_WAIT = 10.0
"""Seconds a command's request waits for the runner to apply it."""


@dataclass(frozen=True)
class Loaded:
    """A Group's newest rollouts (newest first), the newest one's Policy and fleet."""

    rows: list[store.RolloutRow]
    policy: Policy
    fleet: Fleet

    @property
    def row(self) -> store.RolloutRow:
        return self.rows[0]


Marks = tuple[int, int]
"""The newest audit ``seq`` and agent report ``id``: a fleet read under equal marks is the same."""


def marks(conn: Connection) -> Marks:
    """The store's :data:`Marks` (two primary-key lookups)."""
    seq = conn.execute(sa.select(sa.func.max(schema.audit.c.seq))).scalar()
    report = conn.execute(sa.select(sa.func.max(schema.node_reports.c.id))).scalar()
    return int(seq or 0), int(report or 0)


K = TypeVar("K")
V = TypeVar("V")


class MarkedCache(Generic[K, V]):
    """Values by key, kept while the store's :data:`Marks` stay the same (invariant 3):
    new marks drop every entry, and so does a full cache (at most ``size``). Safe to share
    between threads."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._marks: Marks | None = None
        self._entries: dict[K, V] = {}

    def get(self, at: Marks, key: K) -> V | None:
        with self._lock:
            return self._entries.get(key) if at == self._marks else None

    def put(self, at: Marks, key: K, value: V) -> None:
        with self._lock:
            if at != self._marks or len(self._entries) >= self.size:
                self._marks, self._entries = at, {}
            self._entries[key] = value


FleetCache = MarkedCache[tuple[str, str], Fleet]
"""Fleets by ``(group, release)``: what :func:`load` reuses."""

C = TypeVar("C")
_shared: weakref.WeakKeyDictionary[Engine, dict[str, Any]] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def shared(engine: Engine, name: str, make: Callable[[], C]) -> C:
    """The one cache called ``name`` for ``engine``'s store, made by ``make`` on first use
    (it lives as long as the engine): how the dashboard's pages keep theirs."""
    with _shared_lock:
        caches = _shared.setdefault(engine, {})
        if name not in caches:
            caches[name] = make()
        found: C = caches[name]
        return found


def fleet_memories(engine: Engine) -> FleetMemories:
    """Invariant 3: the fleet memories of ``engine``'s store, one for the whole process."""
    return shared(engine, "fleet-memories", FleetMemories)


def load(
    engine: Engine,
    group: str,
    *,
    rows: int = 1,
    cache: FleetCache | None = None,
    memories: FleetMemories | None = None,
) -> Loaded | None:
    """The Group's newest ``rows`` rollouts and what the status of the newest needs."""
    with reader(engine).connect() as conn:
        found = store.history(conn, group, rows)
        if not found:
            return None
        row = found[0]
        _, body = release_and_policy(conn, row.release_id)
        at = marks(conn) if cache is not None else (0, 0)  # read before the fleet
    key = (group, str(row.release_id))
    fleet = None if cache is None else cache.get(at, key)
    if fleet is None:
        since = row.state.started_at
        if memories is not None:  # its own connection, opened under the memory's lock
            fleet = memories.fleet(engine, group, row.release_id, since=since, metrics=False)
        else:
            with reader(engine).connect() as conn:
                fleet = load_fleet(conn, group, row.release_id, since=since, metrics=False)
        if cache is not None:
            cache.put(at, key, fleet)
    return Loaded(found, policy_of(body), fleet)


def history_json(rows: list[store.RolloutRow]) -> list[dict[str, Any]]:
    """Earlier rollouts as the API's ``history`` lists them."""
    return [
        {
            "release": r.release_id,
            "phase": r.phase,
            "reason": r.state.reason,
            "started_at": iso(r.state.started_at),
            "updated_at": iso(r.state.updated_at),
        }
        for r in rows
    ]


def rollout_status(engine: Engine, group: str, *, history: bool = False) -> dict[str, Any] | None:
    """The status of the Group's rollout (with its 10 earlier ones); None without one."""
    loaded = load(engine, group, rows=11 if history else 1, memories=fleet_memories(engine))
    if loaded is None:
        return None
    out = status_json(loaded.row, loaded.policy, loaded.fleet, now())
    if history:
        out["history"] = history_json(loaded.rows[1:])
    return out


def queue_command(engine: Engine, group: str, command: Command) -> int:
    """Check A6 against the current rollout and queue ``command``; its id (invariant 2)."""
    with engine.begin() as conn:
        row = store.current(conn, group)
        if row is None:
            raise not_found(f"group {group!r} has no rollout")
        error = command_error(row.state, command)
        if error is not None:
            raise ApiError(
                409,
                f"cannot {command.kind} the rollout of {row.release_id}: {error}",
                code="rollout_conflict",
                details={"phase": row.state.phase.value, "release": row.release_id},
            )
        return store.queue(conn, group, row.release_id, command, now())


def _outcome(engine: Engine, command_id: int) -> str | None:
    with reader(engine).connect() as conn:
        return store.outcome(conn, command_id)


@dataclass(frozen=True)
class Steered:
    """A queued command: applied by this Center's runner, or left for the one that drives."""

    command_id: int
    applied: bool


async def steer(
    engine: Engine, runner: RolloutRunner | None, group: str, command: Command
) -> Steered:
    """Queue ``command`` for the Group's rollout and wait for the runner (invariants 2-3)."""
    if runner is None:
        raise ApiError(503, "this Center does not run rollouts", code="unavailable")
    command_id = await db(queue_command, engine, group, command)
    runner.poke()
    deadline = time.monotonic() + COMMAND_WAIT
    outcome = None
    if not runner.passes:  # just started: its first pass says whether it drives
        await runner.passed(COMMAND_WAIT)
    while runner.driving and time.monotonic() < deadline:
        await runner.passed(deadline - time.monotonic())
        outcome = await db(_outcome, engine, command_id)
        if outcome is not None:
            break
    if outcome is None:
        return Steered(command_id, applied=False)
    if outcome != "applied":
        raise ApiError(
            409,
            f"the rollout moved before the command applied: {outcome}",
            code="rollout_conflict",
            details={"command": command.kind, "queued": command_id},
        )
    return Steered(command_id, applied=True)
