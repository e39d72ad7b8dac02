"""The rollout page, ``/ui/rollouts/{group}``: waves, transitions, history, and steering.

Example::

    GET  /ui/rollouts/checkout                 # the page (viewer and up); HX-Request: #rollout-live
    POST /ui/rollouts/checkout/approve         # form: csrf, reason -> 303 back with a notice

Invariants:

* What the page shows is :mod:`konorkestra.center.ui.rollout_data`'s; a Group
  without a rollout (or no such Group) is a 404 page.
* Operators and admins see one form per command that applies now (rule A6);
  viewers see none, and their ``POST`` is a 403 page before anything is read
  (:func:`~konorkestra.center.ui.web.page`), as is a ``POST`` without the form token.
* A command is queued and awaited exactly as the API does it
  (:func:`konorkestra.center.rollouts.control.steer`, actor = the session's
  token): then 303 back to the page with a notice saying it was applied,
  queued (another Center drives), or refused and why (a 409: rule A6 or the
  rollout moved). An unknown command is a 404 page; a reason over 1,000
  characters a 400 page; a command's address opened with ``GET`` changes
  nothing and leads back to the page.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.errors import ApiError, not_found
from konorkestra.center.app.web import ctx_of, db
from konorkestra.center.operators.apitokens import Role
from konorkestra.center.rollouts.control import steer
from konorkestra.center.store.engine import now
from konorkestra.center.ui.rollout_data import (
    HISTORY,
    MAX_TRANSITIONS,
    SEARCHED,
    load_rollout_page,
)
from konorkestra.center.ui.sessions import Session
from konorkestra.center.ui.web import back, form_of, page, render
from konorkestra.rollout import Command
from konorkestra.rollout.inputs import COMMANDS

MAX_REASON = 1000
"""Characters of an operator's reason at most (as the API)."""


def path_of(group: str) -> str:
    return f"/ui/rollouts/{quote(group, safe='')}"


@page(Role.VIEWER)
async def show(request: Request, session: Session) -> Response:
    group = request.path_params["group"]
    view = await db(load_rollout_page, ctx_of(request).engine, group, now(), session.actor)
    if view is None:
        raise not_found(f"Group {group!r} has no rollout (no such Group, or no Release yet).")
    return render(
        request,
        session,
        "rollout.html",
        nav="overview",
        partial="rollout_live.html",
        view=view,
        path=path_of(group),
        can_steer=session.allows(Role.OPERATOR),
        max_transitions=MAX_TRANSITIONS,
        history_max=HISTORY,
        searched=SEARCHED,
    )


@page(Role.OPERATOR)
async def command(request: Request, session: Session) -> Response:
    group, kind = request.path_params["group"], request.path_params["command"]
    if kind not in COMMANDS:
        raise not_found(f"No rollout command {kind!r}; one of {', '.join(COMMANDS)}.")
    reason = (await form_of(request)).get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise ApiError(400, f"The reason must be text of at most {MAX_REASON} characters.")
    ctx = ctx_of(request)
    try:
        order = Command(kind, session.actor, reason.strip())
        done = await steer(ctx.engine, ctx.rollouts, group, order)
    except ApiError as e:
        if e.status != 409:
            raise
        return back(path_of(group), f"Refused: {e.message}")
    if done.applied:
        return back(path_of(group), f"Applied: {kind} ({group}).")
    return back(
        path_of(group),
        f"Queued: {kind} (command {done.command_id}); the Center that drives the rollouts "
        "applies it.",
    )


@page(Role.VIEWER)
async def command_link(request: Request, session: Session) -> Response:
    """A command's address opened as a link (``GET``): nothing happens, back to the page."""
    return back(path_of(request.path_params["group"]))


def routes() -> list[BaseRoute]:
    return [
        Route("/rollouts/{group}", show, methods=["GET"]),
        Route("/rollouts/{group}/{command}", command, methods=["POST"]),
        Route("/rollouts/{group}/{command}", command_link, methods=["GET"]),
    ]
