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
* Every response that is an error has the shape of
  :mod:`konorkestra.center.errors`; every request is counted in ``/metrics`` by
  its route template (never its raw path, so label cardinality stays bounded).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from konorkestra.center.context import CenterContext
from konorkestra.center.errors import EXCEPTION_HANDLERS
from konorkestra.center.routes import all_routes


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

    app = Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
        middleware=[Middleware(_CountRequests, ctx=ctx, routes=routes)],
    )
    app.state.ctx = ctx
    return app
