"""``POST /v1/hooks/git``: a push happened, look at the repository now.

The body is optional; when present it must be a JSON object (the post-receive
hook sends ``{"refs": [{"old": .., "new": .., "ref": ..}]}``, which is only
logged in the response). ``?wait=SECONDS`` (at most 60) holds the response until
the ingest pass that saw this request is done, so a hook can print the outcome.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from konorkestra.center.auth import require
from konorkestra.center.errors import ApiError
from konorkestra.center.tokens import Role
from konorkestra.center.web import ctx_of, json_body, ok, query_int


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


routes = [Route("/v1/hooks/git", git_hook, methods=["POST"])]
