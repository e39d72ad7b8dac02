"""The Center's ASGI app factory.

Example::

    from konorkestra.center.app import create_app
    from konorkestra.center.context import CenterContext
    app = create_app(CenterContext(engine=engine, trust_root=root_bytes))
    uvicorn.run(app, host="127.0.0.1", port=7400)

Invariants:

* The app is built from a :class:`CenterContext` only; later issues add agent
  routes (``ctx.extra_routes``) and services (``ctx.services``) there.
* The lifespan starts ``ctx.services`` in order and stops them in reverse, even
  when one fails to start.
* Stopping: the server calls :func:`begin_shutdown` when a stop *begins*
  (:class:`~konorkestra.center.graceful.GracefulServer`), before it waits on
  open connections; every service that parks requests (:class:`Parks`) lets
  them answer at once. The lifespan's ``stop`` comes later, after the last
  connection has closed. ``konorkestra_center_parked_requests`` counts the
  requests parked right now.
* Every response that is an error has the shape of
  :mod:`konorkestra.center.errors`; every request is counted in ``/metrics`` by
  its route template (never its raw path, so label cardinality stays bounded).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from prometheus_client import Gauge
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from konorkestra.center.bodylimit import CloseUnreadBody
from konorkestra.center.context import CenterContext
from konorkestra.center.errors import EXCEPTION_HANDLERS
from konorkestra.center.routes import all_routes


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

    def _template(self, scope: Scope) -> str:
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
    routes = [*all_routes(), *ctx.extra_routes]

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
