"""``/v1/trust/root``: the trust root agents pin (public: it holds only public keys)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from konorkestra.center.web import ctx_of


async def trust_root(request: Request) -> Response:
    return Response(ctx_of(request).trust_root, media_type="application/json")


routes = [Route("/v1/trust/root", trust_root, methods=["GET"])]
