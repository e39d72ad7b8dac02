"""The rollouts wing's routes: see a rollout, and steer it.

Routes (operator API tokens; reading needs ``viewer``, steering ``operator``)::

    GET  /v1/rollouts                    -> {"rollouts": [status of each Group's latest rollout]}
    GET  /v1/rollouts/{group}            -> status (konorkestra.center.rollouts.status), with
                                            "history": the Group's earlier rollouts, newest first
    POST /v1/rollouts/{group}/{command}  -> status after the command; command: approve, pause,
                                            resume, abort or promote; body {"reason": "..."}

Invariants:

* A command that cannot apply now (rule A6) is ``409 rollout_conflict`` with
  the engine's reason and the rollout's phase, before anything is queued.
* An accepted command is queued in the store with the caller as actor and
  applied by the one rollout runner; the answer waits (at most
  :data:`COMMAND_WAIT` seconds) until the runner applied or rejected it: 200
  with the new status, or 409 with the runner's reason (the rollout moved in
  between). If this Center does not drive the rollouts (another one holds the
  runner lock) the answer is ``202`` with the queued command's id.
* Every command is audited by the runner's decision (``approval.granted``,
  ``rollout.paused``, ``rollout.aborted``, ``command.rejected``… with actor and
  reason).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.errors import ApiError, invalid, not_found
from konorkestra.center.app.web import ctx_of, db, json_body, ok
from konorkestra.center.operators.apitokens import Role
from konorkestra.center.operators.auth import require
from konorkestra.center.rollouts import store
from konorkestra.center.rollouts.fleet import load_fleet
from konorkestra.center.rollouts.status import iso, status_json
from konorkestra.center.rollouts.step import policy_of, release_and_policy
from konorkestra.center.store.engine import now, reader
from konorkestra.rollout import Command, command_error
from konorkestra.rollout.inputs import COMMANDS

COMMAND_WAIT = 10.0
"""Seconds a command's request waits for the runner to apply it."""


def _status(engine: Engine, group: str, *, history: bool = False) -> dict[str, Any] | None:
    with reader(engine).connect() as conn:
        rows = store.history(conn, group, 11 if history else 1)
        if not rows:
            return None
        row = rows[0]
        _, body = release_and_policy(conn, row.release_id)
        policy = policy_of(body)
        fleet = load_fleet(conn, group, row.release_id, since=row.state.started_at, metrics=False)
    out = status_json(row, policy, fleet, now())
    if history:
        out["history"] = [
            {
                "release": r.release_id,
                "phase": r.phase,
                "reason": r.state.reason,
                "started_at": iso(r.state.started_at),
                "updated_at": iso(r.state.updated_at),
            }
            for r in rows[1:]
        ]
    return out


def _all(engine: Engine) -> list[dict[str, Any]]:
    with reader(engine).connect() as conn:
        groups = sorted(store.current_all(conn))
    return [s for g in groups if (s := _status(engine, g)) is not None]


async def list_rollouts(request: Request) -> Response:
    await require(request, Role.VIEWER)
    return ok({"rollouts": await db(_all, ctx_of(request).engine)})


async def show_rollout(request: Request) -> Response:
    await require(request, Role.VIEWER)
    group = request.path_params["group"]
    found = await db(_status, ctx_of(request).engine, group, history=True)
    if found is None:
        raise not_found(f"group {group!r} has no rollout (it has no Release yet, or no such group)")
    return ok(found)


def _queue(engine: Engine, group: str, command: Command) -> int:
    """Check A6 against the current rollout and queue ``command``; its id."""
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


async def steer(request: Request) -> Response:
    who = await require(request, Role.OPERATOR)
    group, kind = request.path_params["group"], request.path_params["command"]
    if kind not in COMMANDS:
        raise not_found(f"no rollout command {kind!r}; one of {', '.join(COMMANDS)}")
    body = await json_body(request) if await request.body() else {}
    unknown = sorted(set(body) - {"reason"})
    if unknown:
        raise invalid(f"unknown field(s): {', '.join(unknown)}", allowed=["reason"])
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 1000:
        raise invalid("'reason' must be a string of at most 1000 characters", field="reason")
    ctx = ctx_of(request)
    runner = ctx.rollouts
    if runner is None:
        raise ApiError(503, "this Center does not run rollouts", code="unavailable")
    command = Command(kind, who.actor, reason)
    command_id = await db(_queue, ctx.engine, group, command)
    runner.poke()
    deadline = time.monotonic() + COMMAND_WAIT
    outcome = None
    if not runner.passes:  # just started: its first pass says whether it drives
        await runner.passed(COMMAND_WAIT)
    while runner.driving and time.monotonic() < deadline:
        await runner.passed(deadline - time.monotonic())
        outcome = await db(_outcome, ctx.engine, command_id)
        if outcome is not None:
            break
    if outcome is None:
        return ok({"queued": command_id, "group": group, "command": kind}, status=202)
    if outcome != "applied":
        raise ApiError(
            409,
            f"the rollout moved before the command applied: {outcome}",
            code="rollout_conflict",
            details={"command": kind, "queued": command_id},
        )
    return ok(await db(_status, ctx.engine, group, history=True))


def routes(ctx: CenterContext) -> list[BaseRoute]:
    """The rollout routes (the same for every ``ctx``; steering is 503 without a runner)."""
    return [
        Route("/v1/rollouts", list_rollouts, methods=["GET"]),
        Route("/v1/rollouts/{group}", show_rollout, methods=["GET"]),
        Route("/v1/rollouts/{group}/{command}", steer, methods=["POST"]),
    ]
