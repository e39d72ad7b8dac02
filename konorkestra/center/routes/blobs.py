"""``/v1/blobs/{digest}``: content-addressed bytes (ConfigSet blobs and raw files)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from konorkestra.center import queries
from konorkestra.center.auth import require
from konorkestra.center.errors import bad_request, not_found
from konorkestra.center.tokens import Role
from konorkestra.center.web import ctx_of, db
from konorkestra.model.canonical import is_digest


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


routes = [Route("/v1/blobs/{digest}", get_blob, methods=["GET"])]
