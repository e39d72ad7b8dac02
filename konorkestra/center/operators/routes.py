"""The operators wing's routes.

``/v1/tokens``: operator API tokens (admin only). A new token is shown once.
``/v1/audit`` (the hash-chained event log, ``viewer``; oldest first, or
``?order=desc`` newest first paged back with ``?before``), ``/v1/audit/verify`` and
``/v1/audit/checkpoint`` (its head signed by the timestamp role, ``checkpoint.py``).
Join tokens are not here: they are the nodes wing's (``/v1/join-tokens``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.errors import ApiError, invalid, not_found
from konorkestra.center.app.web import ctx_of, db, json_body, ok, query_int
from konorkestra.center.operators.apitokens import (
    ApiTokenInfo,
    Role,
    create_api_token,
    list_api_tokens,
    revoke_api_token,
)
from konorkestra.center.operators.auth import require
from konorkestra.center.operators.checkpoint import checkpoint_route
from konorkestra.center.store.audit import list_audit, verify_chain

_ROLES = [str(r) for r in Role]


async def list_api_tokens_route(request: Request) -> Response:
    await require(request, Role.ADMIN)
    found = await db(list_api_tokens, ctx_of(request).engine)
    return ok({"tokens": [t.to_json() for t in found]})


async def create_api_token_route(request: Request) -> Response:
    who = await require(request, Role.ADMIN)
    body = await json_body(request)
    name, role = body.get("name"), body.get("role")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise invalid("'name' must be a string of 1 to 100 characters", field="name")
    if role not in _ROLES:
        raise invalid(f"'role' must be one of {', '.join(_ROLES)}", field="role")
    engine = ctx_of(request).engine

    def create() -> tuple[str, ApiTokenInfo]:
        with engine.begin() as conn:
            return create_api_token(conn, role=Role(role), name=name, created_by=who.actor)

    secret, info = await db(create)
    return ok({"token": secret, **info.to_json()}, status=201)


async def revoke_api_token_route(request: Request) -> Response:
    who = await require(request, Role.ADMIN)
    token_id = request.path_params["id"]
    engine = ctx_of(request).engine

    def revoke() -> bool:
        with engine.begin() as conn:
            return revoke_api_token(conn, token_id, by=who.actor)

    if not await db(revoke):
        raise not_found(f"no live token {token_id!r}")
    return ok({"id": token_id, "revoked": True})


def _audit_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter of ``/v1/audit``; a 400 ``invalid`` naming it."""
    try:
        return query_int(request, name, default, lo=lo, hi=hi)
    except ApiError as exc:
        raise ApiError(400, exc.message, code="invalid", details={"parameter": name}) from None


async def list_audit_events(request: Request) -> Response:
    """``?after=SEQ&before=SEQ&limit=N&order=asc|desc``: one page of the log.

    ``asc`` (the default) pages forward with ``after``; ``desc`` lists the newest
    first and pages backward with ``before``. ``next`` is the cursor of the next
    page in the same order (``after`` for asc, ``before`` for desc), None at the end.
    """
    await require(request, Role.VIEWER)
    order = request.query_params.get("order", "asc")
    if order not in ("asc", "desc"):
        raise ApiError(
            400, "query parameter 'order' must be asc or desc", code="invalid",
            details={"parameter": "order"},
        )  # fmt: skip
    after = _audit_int(request, "after", 0, 0, 2**62)
    before = _audit_int(request, "before", 2**62, 1, 2**62)
    limit = _audit_int(request, "limit", 500, 1, 5000)
    events = await db(
        list_audit, ctx_of(request).engine, after=after, before=before, limit=limit,
        newest_first=order == "desc",
    )  # fmt: skip
    nxt = events[-1].seq if len(events) == limit else None
    return ok({"events": [e.to_json() for e in events], "next": nxt})


async def verify(request: Request) -> Response:
    await require(request, Role.VIEWER)
    result = await db(verify_chain, ctx_of(request).engine)
    return ok(result.to_dict())


def routes(ctx: CenterContext) -> list[BaseRoute]:
    """The operators wing's routes (the same for every ``ctx``)."""
    return [
        Route("/v1/audit", list_audit_events, methods=["GET"]),
        Route("/v1/audit/verify", verify, methods=["GET"]),
        Route("/v1/audit/checkpoint", checkpoint_route, methods=["GET"]),
        Route("/v1/tokens", list_api_tokens_route, methods=["GET"]),
        Route("/v1/tokens", create_api_token_route, methods=["POST"]),
        Route("/v1/tokens/{id}", revoke_api_token_route, methods=["DELETE"]),
    ]
