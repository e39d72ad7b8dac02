"""What every dashboard page shares: templates, the session guard, forms, headers.

Example (a page module)::

    @page(Role.VIEWER)
    async def overview(request: Request, session: Session) -> Response:
        groups = await db(load_overview, ctx_of(request).engine)
        return render(request, session, "overview.html", groups=groups,
                      partial="overview_live.html")

Invariants:

* Every page passes :func:`page`: no session cookie (or an expired, logged-out
  or revoked one) sends a browser to ``/ui/login`` (a ``GET``) or answers 401;
  a role too low is a 403 page; a ``POST`` whose form lacks the session's form
  token is a 403 page before the handler runs. An :class:`ApiError` raised by a
  handler becomes an HTML error page with its status and message: nothing a
  browser can send produces a traceback or a 500.
* Templates autoescape everything and fail on an undefined name
  (``StrictUndefined``), so a typo is a test failure, not an empty cell.
* Every ``/ui`` response carries :data:`SECURITY_HEADERS`: a
  Content-Security-Policy with no ``unsafe-inline`` and no ``unsafe-eval``
  (scripts and styles come only from ``/ui/static``), no framing, no sniffing,
  and no caching of pages.
* Every ``/ui`` response carries ``Server-Timing: app;dur=<ms>``: the time from
  the request reaching the dashboard to its response starting (session check,
  queries and rendering), what ``bench/ui.py`` reads and a browser's devtools show.
* An htmx request (``HX-Request``) for a page with a ``partial`` gets only the
  partial: the live region, rendered by the same template the page includes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from konorkestra.center.app.errors import ApiError, log
from konorkestra.center.app.web import ctx_of, db
from konorkestra.center.operators.apitokens import Role
from konorkestra.center.store.engine import now
from konorkestra.center.ui.sessions import COOKIE, Session, find_session
from konorkestra.center.ui.timefmt import absolute, relative

HERE = Path(__file__).resolve().parent
PREFIX = "/ui"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["ago"] = lambda when: relative(when, now())
_env.filters["abs"] = absolute
TEMPLATES = Jinja2Templates(env=_env)

Handler = Callable[[Request, Session], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def error_page(request: Request, status: int, message: str, session: Session | None) -> Response:
    """An HTML page for an error a browser caused (never a traceback)."""
    return TEMPLATES.TemplateResponse(
        request,
        "error.html",
        {
            "status": status,
            "message": message,
            "session": session,
            "csrf": session.csrf if session else "",
            "nav": "",
        },
        status_code=status,
    )


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{PREFIX}/login?next={quote(target, safe='')}"
    if request.headers.get("hx-request"):  # htmx swaps a body; tell it to navigate instead
        return Response(status_code=401, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


async def form_of(request: Request) -> FormData:
    """The request's form (read once, small: no files, few fields)."""
    return await request.form(max_files=0, max_fields=32, max_part_size=64 * 1024)


def page(role: Role = Role.VIEWER) -> Callable[[Handler], Endpoint]:
    """Guard a page handler: session, role, form token, HTML errors (see module rules)."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            engine = ctx_of(request).engine
            session = await db(find_session, engine, request.cookies.get(COOKIE), now())
            if session is None:
                if request.method == "GET":
                    return _login_redirect(request)
                return error_page(request, 401, "Your session has ended; log in again.", None)
            if not session.allows(role):
                return error_page(
                    request,
                    403,
                    f"This needs the {role} role; your token has the {session.who.role} role.",
                    session,
                )
            if request.method == "POST":
                try:
                    form = await form_of(request)
                except Exception:  # a malformed or oversized form is the sender's problem
                    return error_page(request, 400, "The form could not be read.", session)
                if not session.csrf_ok(_str(form.get("csrf"))):
                    return error_page(
                        request, 403, "The form is stale or forged (bad form token).", session
                    )
            try:
                return await handler(request, session)
            except ApiError as e:
                return error_page(request, e.status, e.message, session)
            except Exception:
                log.exception("dashboard page %s failed", request.url.path)
                return error_page(request, 500, "The page failed; the Center logged why.", session)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def render(
    request: Request,
    session: Session,
    template: str,
    *,
    nav: str = "",
    partial: str | None = None,
    status: int = 200,
    **values: Any,
) -> Response:
    """``template`` (or only ``partial`` for an htmx request) with the session's values."""
    name = partial if partial and request.headers.get("hx-request") else template
    context = {"session": session, "csrf": session.csrf, "nav": nav, **values}
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status)


def back(path: str, message: str = "") -> Response:
    """After a form: 303 to ``path`` (a ``/ui`` path), with a one-line notice."""
    sep = "&" if "?" in path else "?"
    return RedirectResponse(
        path + (f"{sep}notice={quote(message)}" if message else ""), status_code=303
    )


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS`, ``no-store`` on pages and ``Server-Timing``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(f"{PREFIX}/static/")
        began = time.perf_counter()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - began) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={took:.1f}".encode()))
                have = {k.lower() for k, _ in headers}
                for k, v in SECURITY_HEADERS.items():
                    if k.encode() not in have:
                        headers.append((k.encode(), v.encode()))
                if not static and b"cache-control" not in have:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
