"""The overview page, ``GET /ui/``: every Group, its Releases and its rollout's progress.

Example::

    GET /ui/                          # the page (viewer and up)
    GET /ui/  (HX-Request: true)      # only the live region #overview-live, on every pulse

Invariants:

* What a card shows is :mod:`konorkestra.center.ui.overview_data`'s (the API's
  rollout status, progress counted in nodes); this module only reads and renders.
* The live region ``#overview-live`` re-requests this page on the pulse's
  ``changed`` event and is replaced by the same template, so it keeps listening.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.web import ctx_of, db
from konorkestra.center.operators.apitokens import Role
from konorkestra.center.store.engine import now
from konorkestra.center.ui.overview_data import load_overview
from konorkestra.center.ui.sessions import Session
from konorkestra.center.ui.web import page, render


@page(Role.VIEWER)
async def overview(request: Request, session: Session) -> Response:
    cards = await db(load_overview, ctx_of(request).engine, now())
    return render(
        request, session, "overview.html", nav="overview", partial="overview_live.html", cards=cards
    )


def routes() -> list[BaseRoute]:
    return [Route("/", overview, methods=["GET"])]
