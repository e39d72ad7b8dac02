"""The releases wing's routes.

``/v1/releases``: list, show, fetch the signed bundle, and create by hand.
``/v1/groups``: Groups as of the latest accepted commit, with their latest Release.
One Release and one Group also answer a ``convergence`` object: how far the
Release (the Group's latest) has reached the Group's nodes
(:mod:`konorkestra.center.releases.convergence`).
``/v1/blobs/{digest}``: content-addressed bytes (ConfigSet blobs and raw files).

Every route calls :func:`konorkestra.center.operators.auth.require` first:
reading needs ``viewer``, creating a Release needs ``operator``.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.errors import ApiError, bad_request, invalid, not_found
from konorkestra.center.app.web import ctx_of, db, json_body, ok, query_int
from konorkestra.center.operators.apitokens import Role
from konorkestra.center.operators.auth import require
from konorkestra.center.releases import queries
from konorkestra.center.releases.convergence_store import group_convergence, release_convergence
from konorkestra.center.releases.manual import create_manual, parse_refs
from konorkestra.model.canonical import is_digest
from konorkestra.model.release import Release

_FIELDS = {"group", "configsets", "strategy", "reason"}


async def list_releases(request: Request) -> Response:
    await require(request, Role.VIEWER)
    group = request.query_params.get("group")
    limit = query_int(request, "limit", 100, lo=1, hi=1000)
    items = await db(queries.list_releases, ctx_of(request).engine, group=group, limit=limit)
    return ok({"releases": [r.to_json() for r in items]})


async def _find(request: Request) -> tuple[Release, bytes]:
    await require(request, Role.VIEWER)
    release_id = request.path_params["id"]
    found = await db(queries.get_release, ctx_of(request).engine, release_id)
    if found is None:
        raise not_found(f"no release {release_id!r}")
    return found


async def show_release(request: Request) -> Response:
    info, bundle = await _find(request)
    counted = await db(release_convergence, ctx_of(request).engine, info)
    return ok({**info.to_json(), "bundle": json.loads(bundle), "convergence": counted.to_json()})


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
    return ok(release.to_json(), status=201)


async def list_groups(request: Request) -> Response:
    await require(request, Role.VIEWER)
    groups = await db(queries.list_groups, ctx_of(request).engine)
    return ok({"groups": [g.to_json() for g in groups]})


async def show_group(request: Request) -> Response:
    await require(request, Role.VIEWER)
    name = request.path_params["name"]
    limit = query_int(request, "limit", 50, lo=1, hi=1000)
    found = await db(queries.get_group, ctx_of(request).engine, name, limit=limit)
    if found is None:
        raise not_found(f"no group {name!r}")
    counted = await db(group_convergence, ctx_of(request).engine, name)
    return ok({**found.to_json(), "convergence": None if counted is None else counted.to_json()})


async def get_blob(request: Request) -> Response:
    await require(request, Role.VIEWER)
    digest = request.path_params["digest"]
    if not is_digest(digest):
        raise bad_request("a blob is named by its digest, sha256:<64 hex>", digest=digest)
    data = await db(queries.get_blob, ctx_of(request).engine, digest)
    if data is None:
        raise not_found(f"no blob {digest}")
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "ETag": f'"{digest}"'}
    return Response(data, media_type="application/octet-stream", headers=headers)


def routes(ctx: CenterContext) -> list[BaseRoute]:
    """The releases wing's routes (the same for every ``ctx``; 503 to create without a key)."""
    return [
        Route("/v1/groups", list_groups, methods=["GET"]),
        Route("/v1/groups/{name}", show_group, methods=["GET"]),
        Route("/v1/releases", list_releases, methods=["GET"]),
        Route("/v1/releases", create_release, methods=["POST"]),
        Route("/v1/releases/{id}", show_release, methods=["GET"]),
        Route("/v1/releases/{id}/bundle", release_bundle, methods=["GET"]),
        Route("/v1/blobs/{digest}", get_blob, methods=["GET"]),
    ]
