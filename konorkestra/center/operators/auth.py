"""Bearer-token authentication and role checks for operator routes.

Example (inside a route)::

    async def create_release(request: Request) -> Response:
        who = await require(request, Role.OPERATOR)   # 401 / 403 as JSON errors
        ...audit.append(conn, who.actor, "release.created", {...})

Invariants:

* No ``Authorization`` header, another scheme, or an unknown, wrong or revoked
  token is a 401 ``unauthenticated`` with ``WWW-Authenticate: Bearer``; a valid
  token whose role is too low is a 403 ``forbidden``. Nothing else is revealed.
* The token is checked against the store on every request (no cache), so a
  revocation takes effect on the next request.
* Routes that are public (health, metrics, the trust root, OpenAPI) simply do
  not call :func:`require`; every other route calls it first.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from konorkestra.center.app.errors import ApiError
from konorkestra.center.app.web import ctx_of
from konorkestra.center.operators.apitokens import ApiTokenInfo, Role, authenticate_api_token

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, message, headers=_CHALLENGE)


async def require(request: Request, role: Role) -> ApiTokenInfo:
    """The caller's identity, if its token allows ``role``; raises :class:`ApiError`."""
    header = request.headers.get("authorization")
    if not header:
        raise _unauthenticated("a bearer token is required (Authorization: Bearer <token>)")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated("use the Bearer authorization scheme")
    info = await run_in_threadpool(authenticate_api_token, ctx_of(request).engine, token)
    if info is None:
        raise _unauthenticated("the token is invalid or revoked")
    if not info.role.allows(role):
        raise ApiError(
            403,
            f"this needs the {role} role; the token has role {info.role}",
            details={"needed": str(role), "role": str(info.role)},
        )
    request.state.principal = info
    return info
