"""``/v1/groups``: Groups as of the latest accepted commit, with their latest Release."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from konorkestra.center import queries
from konorkestra.center.auth import require
from konorkestra.center.errors import not_found
from konorkestra.center.tokens import Role
from konorkestra.center.web import ctx_of, db, ok, query_int


async def list_groups(request: Request) -> Response:
    await require(request, Role.VIEWER)
    return ok({"groups": await db(queries.list_groups, ctx_of(request).engine)})


async def show_group(request: Request) -> Response:
    await require(request, Role.VIEWER)
    name = request.path_params["name"]
    limit = query_int(request, "limit", 50, lo=1, hi=1000)
    found = await db(queries.get_group, ctx_of(request).engine, name, limit=limit)
    if found is None:
        raise not_found(f"no group {name!r}")
    return ok(found)


routes = [
    Route("/v1/groups", list_groups, methods=["GET"]),
    Route("/v1/groups/{name}", show_group, methods=["GET"]),
]
