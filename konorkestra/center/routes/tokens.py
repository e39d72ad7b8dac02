"""``/v1/tokens``: operator API tokens (admin only). A new token is shown once."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from konorkestra.center import tokens
from konorkestra.center.auth import require
from konorkestra.center.errors import invalid, not_found
from konorkestra.center.tokens import Role
from konorkestra.center.web import ctx_of, db, json_body, ok

_ROLES = [str(r) for r in Role]


async def list_tokens(request: Request) -> Response:
    await require(request, Role.ADMIN)
    found = await db(tokens.list_tokens, ctx_of(request).engine)
    return ok({"tokens": [t.to_dict() for t in found]})


async def create_token(request: Request) -> Response:
    who = await require(request, Role.ADMIN)
    body = await json_body(request)
    name, role = body.get("name"), body.get("role")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise invalid("'name' must be a string of 1 to 100 characters", field="name")
    if role not in _ROLES:
        raise invalid(f"'role' must be one of {', '.join(_ROLES)}", field="role")
    engine = ctx_of(request).engine

    def create() -> tuple[str, tokens.TokenInfo]:
        with engine.begin() as conn:
            return tokens.create_token(conn, role=Role(role), name=name, created_by=who.actor)

    secret, info = await db(create)
    return ok({"token": secret, **info.to_dict()}, status=201)


async def revoke_token(request: Request) -> Response:
    who = await require(request, Role.ADMIN)
    token_id = request.path_params["id"]
    engine = ctx_of(request).engine

    def revoke() -> bool:
        with engine.begin() as conn:
            return tokens.revoke_token(conn, token_id, by=who.actor)

    if not await db(revoke):
        raise not_found(f"no live token {token_id!r}")
    return ok({"id": token_id, "revoked": True})


routes = [
    Route("/v1/tokens", list_tokens, methods=["GET"]),
    Route("/v1/tokens", create_token, methods=["POST"]),
    Route("/v1/tokens/{id}", revoke_token, methods=["DELETE"]),
]
