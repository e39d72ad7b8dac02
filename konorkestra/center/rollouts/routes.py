"""The rollouts wing's routes: see a rollout, and steer it.

Routes (operator API tokens; reading needs ``viewer``, steering ``operator``)::

    GET  /v1/rollouts                    -> {"rollouts": [status of each Group's latest rollout]}
    GET  /v1/rollouts/{group}            -> status (konorkestra.center.rollouts.status), with
                                            "history": the Group's earlier rollouts, newest first
    POST /v1/rollouts/{group}/{command}  -> status after the command; command: approve, pause,
                                            resume, abort or promote; body {"reason": "..."}

Invariants:

* The status and the steering are :mod:`konorkestra.center.rollouts.control`'s, which the
  dashboard calls too.
* A command that cannot apply now (rule A6) is ``409 rollout_conflict`` with
  the engine's reason and the rollout's phase, before anything is queued.
* An accepted command is queued in the store with the caller as actor and
  applied by the one rollout runner; the answer waits (at most
  :data:`~konorkestra.center.rollouts.control.COMMAND_WAIT` seconds) until the
  runner applied or rejected it: 200 with the new status, or 409 with the
  runner's reason (the rollout moved in between). If this Center does not
  drive the rollouts (another one holds the runner lock) the answer is
  ``202`` with the queued command's id.
* Every command is audited by the runner's decision (``approval.granted``,
  ``rollout.paused``, ``rollout.aborted``, ``command.rejected``… with actor and
  reason).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.errors import invalid, not_found
from konorkestra.center.app.web import ctx_of, db, json_body, ok
from konorkestra.center.operators.apitokens import Role
from konorkestra.center.operators.auth import require
from konorkestra.center.rollouts import store
from konorkestra.center.rollouts.control import rollout_status, steer
from konorkestra.center.store.engine import reader
from konorkestra.rollout import Command
from konorkestra.rollout.inputs import COMMANDS


def _all(engine: Engine) -> list[dict[str, Any]]:
    with reader(engine).connect() as conn:
        groups = sorted(store.current_all(conn))
    return [s for g in groups if (s := rollout_status(engine, g)) is not None]


async def list_rollouts(request: Request) -> Response:
    await require(request, Role.VIEWER)
    return ok({"rollouts": await db(_all, ctx_of(request).engine)})


async def show_rollout(request: Request) -> Response:
    await require(request, Role.VIEWER)
    group = request.path_params["group"]
    found = await db(rollout_status, ctx_of(request).engine, group, history=True)
    if found is None:
        raise not_found(f"group {group!r} has no rollout (it has no Release yet, or no such group)")
    return ok(found)


async def steer_rollout(request: Request) -> Response:
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
    done = await steer(ctx.engine, ctx.rollouts, group, Command(kind, who.actor, reason))
    if not done.applied:
        return ok({"queued": done.command_id, "group": group, "command": kind}, status=202)
    return ok(await db(rollout_status, ctx.engine, group, history=True))


def routes(ctx: CenterContext) -> list[BaseRoute]:
    """The rollout routes (the same for every ``ctx``; steering is 503 without a runner)."""
    return [
        Route("/v1/rollouts", list_rollouts, methods=["GET"]),
        Route("/v1/rollouts/{group}", show_rollout, methods=["GET"]),
        Route("/v1/rollouts/{group}/{command}", steer_rollout, methods=["POST"]),
    ]
