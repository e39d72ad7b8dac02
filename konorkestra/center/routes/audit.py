"""``/v1/audit`` (the hash-chained event log) and ``/v1/audit/verify``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from konorkestra.center import queries
from konorkestra.center.audit import verify_chain
from konorkestra.center.auth import require
from konorkestra.center.tokens import Role
from konorkestra.center.web import ctx_of, db, ok, query_int


async def list_audit(request: Request) -> Response:
    await require(request, Role.VIEWER)
    after = query_int(request, "after", 0, lo=0, hi=2**62)
    limit = query_int(request, "limit", 500, lo=1, hi=5000)
    rows = await db(queries.list_audit, ctx_of(request).engine, after=after, limit=limit)
    return ok({"events": rows, "next": rows[-1]["seq"] if len(rows) == limit else None})


async def verify(request: Request) -> Response:
    await require(request, Role.VIEWER)
    result = await db(verify_chain, ctx_of(request).engine)
    return ok(result.to_dict())


routes = [
    Route("/v1/audit", list_audit, methods=["GET"]),
    Route("/v1/audit/verify", verify, methods=["GET"]),
]
