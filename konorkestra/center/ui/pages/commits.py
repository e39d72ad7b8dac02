"""The commits pages: ``/ui/commits`` (newest first) and ``/ui/commits/{sha}``.

Example::

    GET /ui/commits                      # accepted and rejected, 25 a page
    GET /ui/commits?status=rejected      # only the rejected ones, with their diagnostics
    GET /ui/commits?before=120           # the next, older page (a commit's seq)
    GET /ui/commits/3f2a9c               # one commit by sha or unique prefix

Invariants:

* Viewers and up see both pages.
* ``status`` is ``accepted``, ``rejected`` or empty; ``before`` a whole number
  from 1: anything else is a 400 page. A sha that is not 4 to 64 hex digits,
  or finds no single commit, is a 404 page.
* A rejected commit's diagnostics read as ``konorctl commits show`` prints them
  (``file:line:col``, severity, message, ``[code]``, hint;
  :mod:`konorkestra.center.ui.commits_data`, rule 3).
* The list is a live region (``id="commits-live"``): a newly ingested commit
  appears without a reload.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.errors import ApiError
from konorkestra.center.app.web import ctx_of, db
from konorkestra.center.operators.apitokens import Role
from konorkestra.center.ui.commits_data import STATUSES, load_commit, load_commits
from konorkestra.center.ui.pages.release import query_int
from konorkestra.center.ui.sessions import Session
from konorkestra.center.ui.web import page, render

SHA_RE = re.compile(r"^[0-9a-f]{4,64}$")


@page(Role.VIEWER)
async def commit_list(request: Request, session: Session) -> Response:
    status = request.query_params.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, f"status must be accepted or rejected, not {status[:40]!r}")
    before = query_int(request, "before", 0) or None
    found = await db(load_commits, ctx_of(request).engine, status=status, before=before)
    query = "&".join(f"{k}={v}" for k, v in (("status", status), ("before", before)) if v)
    return render(
        request, session, "commits.html", nav="commits", partial="commits_live.html",
        page=found, chosen=status or "", before=before, here=f"/ui/commits?{query}".rstrip("?"),
    )  # fmt: skip


@page(Role.VIEWER)
async def commit_view(request: Request, session: Session) -> Response:
    sha = str(request.path_params["sha"]).lower()
    if not SHA_RE.fullmatch(sha):
        raise ApiError(404, "a commit is named by 4 to 64 hex digits of its sha")
    found = await db(load_commit, ctx_of(request).engine, sha)
    if found is None:
        raise ApiError(404, f"no single ingested commit starts with {sha}")
    return render(request, session, "commits_one.html", nav="commits", c=found)


def routes() -> list[BaseRoute]:
    return [
        Route("/commits", commit_list, methods=["GET"]),
        Route("/commits/{sha}", commit_view, methods=["GET"]),
    ]
