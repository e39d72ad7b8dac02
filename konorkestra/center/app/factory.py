"""The Center's ASGI app factory.

Example::

    from konorkestra.center.app.factory import create_app
    from konorkestra.center.app.context import CenterContext
    app = create_app(CenterContext(engine=engine, trust_root=root_bytes))
    uvicorn.run(app, host="127.0.0.1", port=7400)

Invariants:

* The app is built from a :class:`CenterContext` only. Its routes are the
  ``routes(ctx)`` of each wing, concatenated in the fixed order of
  :data:`WINGS` (the one way to register a route); a wing whose typed field of
  the context is unset contributes none.
* The lifespan starts ``ctx.services`` in order and stops them in reverse, even
  when one fails to start.
* Stopping: the server calls :func:`begin_shutdown` when a stop *begins*
  (:class:`~konorkestra.center.app.graceful.GracefulServer`), before it waits on
  open connections; every service that parks requests (:class:`Parks`) lets
  them answer at once. The lifespan's ``stop`` comes later, after the last
  connection has closed. ``konorkestra_center_parked_requests`` counts the
  requests parked right now.
* Every response that is an error has the shape of
  :mod:`konorkestra.center.app.errors`; every request is counted in ``/metrics`` by
  its route template (never its raw path, so label cardinality stays bounded).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol, runtime_checkable

from prometheus_client import Gauge
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from konorkestra.center.agentapi import routes as agentapi_routes
from konorkestra.center.app import routes as app_routes
from konorkestra.center.app.bodylimit import CloseUnreadBody
from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.errors import EXCEPTION_HANDLERS
from konorkestra.center.ingest import routes as ingest_routes
from konorkestra.center.nodes import routes as nodes_routes
from konorkestra.center.operators import routes as operators_routes
from konorkestra.center.pki import routes as pki_routes
from konorkestra.center.releases import routes as releases_routes
from konorkestra.center.releases.gauges import RolloutCollector
from konorkestra.center.rollouts import routes as rollouts_routes
from konorkestra.center.ui import routes as ui_routes

WINGS: tuple[Callable[[CenterContext], list[BaseRoute]], ...] = (
    app_routes.routes,  # /healthz, /readyz, /metrics, /v1/openapi.json, /v1/trust/root
    ingest_routes.routes,  # /v1/commits, /v1/hooks/git
    releases_routes.routes,  # /v1/groups, /v1/releases, /v1/blobs
    operators_routes.routes,  # /v1/audit, /v1/tokens
    nodes_routes.routes,  # /v1/enroll, /v1/nodes, /v1/join-tokens (ctx.enrollment)
    pki_routes.routes,  # /v1/tls/self-test (ctx.tls_self_test)
    agentapi_routes.routes,  # /v1/agent/* (ctx.agent_api)
    rollouts_routes.routes,  # /v1/rollouts
    ui_routes.routes,  # / and /ui/ (ctx.ui): the dashboard
)
"""Every wing's ``routes(ctx)``, in the order the app matches them."""


def all_routes(ctx: CenterContext) -> list[BaseRoute]:
    """The routes of every wing for ``ctx``, in :data:`WINGS` order."""
    return [route for wing in WINGS for route in wing(ctx)]


@runtime_checkable
class Parks(Protocol):
    """A service that holds requests open (long-polls) until something happens."""

    def parked(self) -> int:
        """How many requests it holds right now."""
        ...

    def drain(self) -> None:
        """The server is stopping: answer every held request now, hold no new one."""
        ...


def parking(ctx: CenterContext) -> list[Parks]:
    """The services of ``ctx`` that park requests."""
    return [s for s in ctx.services if isinstance(s, Parks)]


def begin_shutdown(ctx: CenterContext) -> None:
    """A stop has begun: parked requests answer now (event-loop thread)."""
    for service in parking(ctx):
        service.drain()


class _CountRequests:
    """Counts requests by method, route template and status."""

    def __init__(self, app: ASGIApp, ctx: CenterContext, routes: Sequence[object]) -> None:
        self.app, self.ctx, self.routes = app, ctx, routes
        # The router leaves the matched route's endpoint in the scope: its path, without a
        # scan of every route, unless one endpoint serves several paths (then: the scan).
        seen: dict[int, set[str]] = {}
        for route in routes:
            endpoint = getattr(route, "endpoint", None) or getattr(route, "app", None)
            if endpoint is not None:
                seen.setdefault(id(endpoint), set()).add(str(getattr(route, "path", "other")))
        self._paths = {key: paths.pop() for key, paths in seen.items() if len(paths) == 1}

    def _template(self, scope: Scope) -> str:
        endpoint = scope.get("endpoint")
        if endpoint is not None and (path := self._paths.get(id(endpoint))) is not None:
            return path
        for route in self.routes:
            match, _ = route.matches(scope)  # type: ignore[attr-defined]
            if match is not Match.NONE:
                return str(getattr(route, "path", "other"))
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.ctx.metrics.http_requests.labels(
                scope["method"], self._template(scope), str(status)
            ).inc()


def create_app(ctx: CenterContext) -> Starlette:
    """A Starlette app serving the Center API over ``ctx``."""
    routes = all_routes(ctx)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for service in ctx.services:
                await service.start()
                stack.push_async_callback(service.stop)
            yield

    with contextlib.suppress(ValueError):  # already registered: a second app on one ctx
        Gauge(
            "konorkestra_center_parked_requests",
            "Requests (agent long-polls) held open right now, waiting for a Release.",
            registry=ctx.metrics.registry,
        ).set_function(lambda: sum(s.parked() for s in parking(ctx)))
        ctx.metrics.registry.register(RolloutCollector(ctx.engine))  # konorkestra_rollout_*
    app = Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
        middleware=[
            Middleware(CloseUnreadBody),  # an unread body: drained <= 4 MiB, else closed
            Middleware(_CountRequests, ctx=ctx, routes=routes),
        ],
    )
    app.state.ctx = ctx
    return app
