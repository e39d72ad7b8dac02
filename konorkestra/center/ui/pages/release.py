"""The Release pages: ``/ui/releases`` (newest first) and ``/ui/releases/{id}``.

Example::

    GET /ui/releases?group=checkout&page=2     # 50 a page, newest first
    GET /ui/releases/checkout-2-0a1b2c3d4e5f6a7b?page=1
        # ConfigSets with digests, the diff against the previous Release (as konorctl
        # diff), signer key ids, source commit and author, convergence per node

Invariants:

* Viewers and up see both pages (:func:`~konorkestra.center.ui.web.page`).
* An id that is not a Release id, or names no Release, is a 404 page; a
  ``page`` that is not a whole number from 1 up to the last page, or a
  ``group`` that is not a Group name, is a 400 page.
* The page reads the store in a fixed number of queries
  (:mod:`konorkestra.center.ui.release_data`, rule 1); the convergence section
  is a live region (``id="release-live"``) that an htmx refresh re-renders
  alone, without re-reading blobs or the diff; convergence is reused while
  nothing changed (:class:`~konorkestra.center.ui.release_data.ConvergenceCache`).
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.errors import ApiError
from konorkestra.center.app.web import ctx_of, db
from konorkestra.center.operators.apitokens import Role
from konorkestra.center.ui.release_data import (
    cache_of,
    load_convergence,
    load_release,
    load_releases,
)
from konorkestra.center.ui.sessions import Session
from konorkestra.center.ui.web import page, render
from konorkestra.model.releaseid import parse_release_id

GROUP_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def query_int(request: Request, name: str, default: int, *, low: int = 1) -> int:
    """The query parameter ``name`` as a whole number >= ``low``, or a 400 page."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 12 or int(raw) < low:
        raise ApiError(400, f"{name} must be a whole number from {low} up, not {raw[:40]!r}")
    return int(raw)


def check_page(number: int, pages: int) -> None:
    """A page past the last is the browser's mistake: a 400 page."""
    if number > pages:
        raise ApiError(400, f"page {number} does not exist: there are {pages}")


@page(Role.VIEWER)
async def release_list(request: Request, session: Session) -> Response:
    group = request.query_params.get("group") or None
    if group is not None and not GROUP_RE.fullmatch(group):
        raise ApiError(400, "group must be a Group name (a DNS label)")
    number = query_int(request, "page", 1)
    releases = await db(load_releases, ctx_of(request).engine, group=group, page=number)
    check_page(number, releases.pages)
    return render(
        request, session, "releases.html", nav="releases", releases=releases, group=group or ""
    )


@page(Role.VIEWER)
async def release_view(request: Request, session: Session) -> Response:
    rid = str(request.path_params["release_id"])
    number = query_int(request, "page", 1)
    if parse_release_id(rid) is None:
        raise ApiError(404, f"{rid[:140]!r} is not a Release id (<group>-<sequence>-<16 hex>)")
    engine = ctx_of(request).engine
    if request.headers.get("hx-request"):
        live = await db(load_convergence, engine, rid, node_page=number, cache=cache_of(engine))
        if live is None:
            raise ApiError(404, f"no Release {rid}")
        release, convergence, nodes = live
        check_page(number, nodes.pages)
        return render(
            request, session, "release_live.html", release=release,
            convergence=convergence, nodes=nodes,
        )  # fmt: skip
    found = await db(load_release, engine, rid, node_page=number, cache=cache_of(engine))
    if found is None:
        raise ApiError(404, f"no Release {rid}")
    check_page(number, found.nodes.pages)
    return render(
        request, session, "release.html", nav="releases", p=found, release=found.release,
        convergence=found.convergence, nodes=found.nodes,
    )  # fmt: skip


def routes() -> list[BaseRoute]:
    return [
        Route("/releases", release_list, methods=["GET"]),
        Route("/releases/{release_id}", release_view, methods=["GET"]),
    ]
