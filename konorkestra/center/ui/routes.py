"""The dashboard wing: ``/ui/``, served by the Center itself (same TLS, same tokens).

Every page is server-rendered HTML (Jinja2, ``templates/``) with htmx for
partial updates and Server-Sent Events for live ones; the scripts and styles
are vendored in ``static/`` (see ``static/VENDORED.md``): no build step, and
no request leaves the Center.

Invariants:

* The wing serves only when the context has a :class:`~konorkestra.center.ui.pulse.Pulse`
  (``ctx.ui``); ``GET /`` then redirects to ``/ui/``.
* Every ``/ui`` response passes :class:`~konorkestra.center.ui.web.SecurityHeaders`;
  an unknown ``/ui`` path is an HTML 404, not the API's JSON.
* Each page module (``pages/``) owns its paths and exposes ``routes()``; this
  module only mounts them, in :data:`PAGES` order.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from konorkestra.center.app.context import CenterContext
from konorkestra.center.ui import login
from konorkestra.center.ui.pages import audit, commits, nodes, overview, release, rollout
from konorkestra.center.ui.web import HERE, PREFIX, SecurityHeaders, error_page

PAGES: tuple[Callable[[], list[BaseRoute]], ...] = (
    overview.routes,  # /ui/
    rollout.routes,  # /ui/rollouts/{group}
    release.routes,  # /ui/releases/{id}
    nodes.routes,  # /ui/nodes, /ui/nodes/{id}
    commits.routes,  # /ui/commits
    audit.routes,  # /ui/audit, /ui/audit/export
)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    await error_page(request, 404, f"No dashboard page at {request.url.path}.", None)(
        scope, receive, send
    )


async def _home(request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


def routes(ctx: CenterContext) -> list[BaseRoute]:
    """``/`` (a redirect) and the ``/ui`` mount, when ``ctx.ui`` is set."""
    if ctx.ui is None:
        return []
    inner: list[BaseRoute] = [
        *login.routes(ctx.ui),
        *(route for make in PAGES for route in make()),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return [
        Route("/", _home, methods=["GET"]),
        Mount(PREFIX, app=SecurityHeaders(Router(inner, default=_not_found))),
    ]
