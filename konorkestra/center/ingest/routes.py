"""The ingest wing's routes.

``/v1/commits``: every ingested commit, accepted or rejected, with diagnostics.

``POST /v1/hooks/git``: a push happened, look at the repository now.

The body is optional; when present it must be a JSON object (the post-receive
hook sends ``{"refs": [{"old": .., "new": .., "ref": ..}]}``, which is only
logged in the response). ``?wait=SECONDS`` (at most 60) holds the response until
the ingest pass that saw this request is done, so a hook can print the outcome.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.errors import ApiError, bad_request, not_found
from konorkestra.center.app.web import ctx_of, db, json_body, ok, query_int
from konorkestra.center.ingest import queries
from konorkestra.center.operators.apitokens import Role
from konorkestra.center.operators.auth import require

_SHA = re.compile(r"^[0-9a-f]{4,64}$")


async def list_commits(request: Request) -> Response:
    await require(request, Role.VIEWER)
    limit = query_int(request, "limit", 50, lo=1, hi=1000)
    before = query_int(request, "before", 0, lo=0, hi=2**62) or None
    items = await db(queries.list_commits, ctx_of(request).engine, limit=limit, before=before)
    return ok({"commits": [c.to_json() for c in items]})


async def show_commit(request: Request) -> Response:
    await require(request, Role.VIEWER)
    sha = request.path_params["sha"].lower()
    if not _SHA.fullmatch(sha):
        raise bad_request("a commit is named by 4 to 64 hex digits", sha=sha)
    found = await db(queries.get_commit, ctx_of(request).engine, sha)
    if found is None:
        raise not_found(f"no ingested commit matches {sha!r} (or the prefix is ambiguous)")
    return ok(found.to_json(full=True))


async def git_hook(request: Request) -> Response:
    who = await require(request, Role.OPERATOR)
    await json_body(request, allow_empty=True)  # 400 on malformed JSON
    wait = query_int(request, "wait", 0, lo=0, hi=60)
    ingest = ctx_of(request).ingest
    if ingest is None:
        raise ApiError(503, "this Center has no Git ingest configured")
    ticket = ingest.trigger(f"hook by {who.actor}")
    done = await ingest.wait_for(ticket, float(wait)) if wait else False
    return ok({"ticket": ticket, "done": done, "ingest": ingest.status()}, status=202)


def routes(ctx: CenterContext) -> list[BaseRoute]:
    """The ingest wing's routes (the same for every ``ctx``; 503 without ingest)."""
    return [
        Route("/v1/commits", list_commits, methods=["GET"]),
        Route("/v1/commits/{sha}", show_commit, methods=["GET"]),
        Route("/v1/hooks/git", git_hook, methods=["POST"]),
    ]
