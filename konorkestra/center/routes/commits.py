"""``/v1/commits``: every ingested commit, accepted or rejected, with diagnostics."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from konorkestra.center import queries
from konorkestra.center.auth import require
from konorkestra.center.errors import bad_request, not_found
from konorkestra.center.tokens import Role
from konorkestra.center.web import ctx_of, db, ok, query_int

_SHA = re.compile(r"^[0-9a-f]{4,64}$")


async def list_commits(request: Request) -> Response:
    await require(request, Role.VIEWER)
    limit = query_int(request, "limit", 50, lo=1, hi=1000)
    before = query_int(request, "before", 0, lo=0, hi=2**62) or None
    items = await db(queries.list_commits, ctx_of(request).engine, limit=limit, before=before)
    return ok({"commits": items})


async def show_commit(request: Request) -> Response:
    await require(request, Role.VIEWER)
    sha = request.path_params["sha"].lower()
    if not _SHA.fullmatch(sha):
        raise bad_request("a commit is named by 4 to 64 hex digits", sha=sha)
    found = await db(queries.get_commit, ctx_of(request).engine, sha)
    if found is None:
        raise not_found(f"no ingested commit matches {sha!r} (or the prefix is ambiguous)")
    return ok(found)


routes = [
    Route("/v1/commits", list_commits, methods=["GET"]),
    Route("/v1/commits/{sha}", show_commit, methods=["GET"]),
]
