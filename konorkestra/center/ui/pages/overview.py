"""The overview page (a first cut: the next change fills it with rollouts)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.operators.apitokens import Role
from konorkestra.center.ui.sessions import Session
from konorkestra.center.ui.web import page, render


@page(Role.VIEWER)
async def overview(request: Request, session: Session) -> Response:
    return render(request, session, "overview.html", nav="overview")


def routes() -> list[BaseRoute]:
    return [Route("/", overview, methods=["GET"])]
