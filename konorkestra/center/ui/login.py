"""Logging in to the dashboard with an API token, and out again.

Routes (under ``/ui``)::

    GET  /login    the form: paste an API token (``konorctl token create``)
    POST /login    token -> session cookie, 303 to ``next`` (a /ui path) or the overview
    POST /logout   the session ends (form token required), 303 to /login
    GET  /events   Server-Sent Events: ``changed`` whenever a page would (pulse.py)

Invariants:

* The session cookie is ``HttpOnly``, ``Secure``, ``SameSite=Strict``, path
  ``/ui``, with the session's expiry as ``Max-Age``; the token itself is never
  stored in the browser nor in the store (only its session's hash).
* The log-in form carries a one-time value that must equal a cookie set with
  the form (double submit), so another site cannot log a browser in.
* A wrong, malformed or revoked token is the form again with a 401 and one
  sentence; nothing says which of the three it was.
* ``next`` is honoured only when it is a path under ``/ui/`` (no scheme, no
  host, no ``//``): the form cannot redirect a browser elsewhere.
* Opening a session is audited (``session.opened``, actor = the token).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.web import ctx_of, db
from konorkestra.center.operators.apitokens import Role, authenticate_api_token
from konorkestra.center.store import audit
from konorkestra.center.store.engine import now
from konorkestra.center.ui.pulse import Pulse
from konorkestra.center.ui.sessions import (
    COOKIE,
    LIFETIME,
    OpenedSession,
    Session,
    end_session,
    open_session,
)
from konorkestra.center.ui.web import PREFIX, TEMPLATES, error_page, form_of, page

LOGIN_COOKIE = "konorkestra_login"


def safe_next(value: object) -> str:
    """``value`` if it is a dashboard path, else the overview."""
    if (
        isinstance(value, str)
        and value.startswith(f"{PREFIX}/")
        and "//" not in value
        and "\\" not in value
        and len(value) < 500
    ):
        return value
    return f"{PREFIX}/"


def _form(request: Request, *, error: str = "", status: int = 200) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {
            "nonce": nonce,
            "next": safe_next(request.query_params.get("next")),
            "error": error,
            "session": None,
            "csrf": "",
            "nav": "",
        },
        status_code=status,
    )
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=600, path=f"{PREFIX}/login",
        secure=True, httponly=True, samesite="strict",
    )  # fmt: skip
    return response


async def login_form(request: Request) -> Response:
    return _form(request)


async def login(request: Request) -> Response:
    try:
        form = await form_of(request)
    except Exception:
        return _form(request, error="The form could not be read.", status=400)
    nonce, token = form.get("nonce"), form.get("token")
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not isinstance(nonce, str) or not cookie or not secrets.compare_digest(nonce, cookie):
        return _form(request, error="The log-in form expired; try again.", status=403)
    engine = ctx_of(request).engine
    who = None
    if isinstance(token, str) and token.strip():
        who = await db(authenticate_api_token, engine, token)
    if who is None:
        return _form(request, error="That token is not valid (or was revoked).", status=401)

    def opened() -> OpenedSession:
        with engine.begin() as conn:
            made = open_session(conn, who, now())
            audit.append(conn, who.actor, "session.opened", {"token_id": who.id, "via": "ui"})
            return made

    session = await db(opened)
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    response.set_cookie(
        COOKIE, session.cookie, max_age=int(LIFETIME.total_seconds()), path=PREFIX,
        secure=True, httponly=True, samesite="strict",
    )  # fmt: skip
    response.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login")
    return response


@page(Role.VIEWER)
async def logout(request: Request, session: Session) -> Response:
    engine = ctx_of(request).engine

    def end() -> None:
        with engine.begin() as conn:
            end_session(conn, request.cookies.get(COOKIE))

    await db(end)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX, secure=True, httponly=True, samesite="strict")
    return response


def events_route(pulse: Pulse) -> Route:
    """``GET /events``: the change feed as Server-Sent Events."""

    @page(Role.VIEWER)
    async def events(request: Request, session: Session) -> Response:
        async def stream() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            async for version in pulse.changes():
                if version is None:
                    yield ": keep-alive\n\n"
                else:
                    yield f"event: changed\ndata: {version}\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    return Route("/events", events, methods=["GET"])


def routes(pulse: Pulse) -> list[BaseRoute]:
    """The log-in, log-out and event routes."""
    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        events_route(pulse),
    ]


__all__ = ["error_page", "routes", "safe_next"]
