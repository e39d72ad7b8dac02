"""``/v1/releases``: list, show, fetch the signed bundle, and create by hand."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from konorkestra.center import queries
from konorkestra.center.auth import require
from konorkestra.center.errors import ApiError, invalid, not_found
from konorkestra.center.manual import create_manual, parse_refs
from konorkestra.center.tokens import Role
from konorkestra.center.web import ctx_of, db, json_body, ok, query_int

_FIELDS = {"group", "configsets", "strategy", "reason"}


async def list_releases(request: Request) -> Response:
    await require(request, Role.VIEWER)
    group = request.query_params.get("group")
    limit = query_int(request, "limit", 100, lo=1, hi=1000)
    items = await db(queries.list_releases, ctx_of(request).engine, group=group, limit=limit)
    return ok({"releases": items})


async def _find(request: Request) -> tuple[dict[str, object], bytes]:
    await require(request, Role.VIEWER)
    release_id = request.path_params["id"]
    found = await db(queries.get_release, ctx_of(request).engine, release_id)
    if found is None:
        raise not_found(f"no release {release_id!r}")
    return found


async def show_release(request: Request) -> Response:
    info, bundle = await _find(request)
    return ok({**info, "bundle": json.loads(bundle)})


async def release_bundle(request: Request) -> Response:
    _, bundle = await _find(request)
    return Response(bundle, media_type="application/json")


async def create_release(request: Request) -> Response:
    who = await require(request, Role.OPERATOR)
    body = await json_body(request)
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise invalid(f"unknown field(s): {', '.join(unknown)}", allowed=sorted(_FIELDS))
    group, strategy, reason = body.get("group"), body.get("strategy"), body.get("reason")
    if not isinstance(group, str) or not group:
        raise invalid("'group' must be a group name", field="group")
    if strategy is not None and not isinstance(strategy, str):
        raise invalid("'strategy' must be a string", field="strategy")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 1000):
        raise invalid("'reason' must be a string of at most 1000 characters", field="reason")
    refs = parse_refs(body.get("configsets"))
    ctx = ctx_of(request)
    if ctx.releaser is None:
        raise ApiError(503, "this Center has no release signing key loaded")
    release = await db(
        create_manual,
        ctx.engine,
        ctx.releaser,
        group=group,
        refs=refs,
        strategy=strategy,
        reason=reason,
        actor=who.actor,
    )
    ctx.releaser.announce([release])
    ctx.metrics.releases.labels("manual").inc()
    return ok(release, status=201)


routes = [
    Route("/v1/releases", list_releases, methods=["GET"]),
    Route("/v1/releases", create_release, methods=["POST"]),
    Route("/v1/releases/{id}", show_release, methods=["GET"]),
    Route("/v1/releases/{id}/bundle", release_bundle, methods=["GET"]),
]
