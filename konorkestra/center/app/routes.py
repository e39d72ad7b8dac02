"""The app wing's routes: ``/healthz`` (the process is up), ``/readyz`` (store and
services ready), ``/metrics``, ``/v1/openapi.json`` and ``/v1/trust/root``.

All public: none calls :func:`konorkestra.center.operators.auth.require`. The
trust root holds only public keys and is served verbatim
(``CenterContext.trust_root``).
"""

from __future__ import annotations

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.metrics import CONTENT_TYPE
from konorkestra.center.app.openapi import openapi
from konorkestra.center.app.web import ctx_of, db
from konorkestra.center.store.engine import reader


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    ctx = ctx_of(request)
    checks: dict[str, str] = {}

    def ping() -> None:
        with reader(ctx.engine).connect() as conn:
            conn.execute(sa.select(1))

    try:
        await db(ping)
        checks["store"] = "ok"
    except Exception as exc:  # the store is down: not ready, say why
        checks["store"] = f"unavailable: {type(exc).__name__}"
    for service in ctx.services:
        ready, why = service.ready()
        checks[service.name] = "ok" if ready else why
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


async def metrics(request: Request) -> Response:
    body = await db(ctx_of(request).metrics.render)  # collectors may read the store
    return Response(body, media_type=CONTENT_TYPE)


async def trust_root(request: Request) -> Response:
    return Response(ctx_of(request).trust_root, media_type="application/json")


def routes(ctx: CenterContext) -> list[BaseRoute]:
    """The app wing's routes (the same for every ``ctx``)."""
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/v1/openapi.json", openapi, methods=["GET"]),
        Route("/v1/trust/root", trust_root, methods=["GET"]),
    ]
