"""The audit page: ``/ui/audit`` (the log), ``/ui/audit/chain`` (its status), the export.

Example::

    GET /ui/audit?action=node.*&actor=alice&group=checkout&since=100&before=900
    GET /ui/audit/chain[?full=1]     # the #chain-status element alone (htmx swaps it in)
    GET /ui/audit/export             # konorkestra-audit-<head>.jsonl, as konorctl audit export

Invariants:

* Every route is ``viewer``, as ``GET /v1/audit`` is. Rows are
  ``<tr data-action data-seq>`` with the actor in a cell; the chain status is
  ``#chain-status`` with ``data-ok`` (``true``, ``false``, or ``pending`` while
  the second request verifies); the download is ``a#audit-export``.
* A bad filter is a 400 page. The page's own work is a fixed number of queries
  plus at most :data:`~konorkestra.center.ui.audit_chain.INLINE_ROWS` rows
  verified (see :mod:`konorkestra.center.ui.audit_chain`).
* The export is streamed (one page of events in memory) after the checkpoint of
  the head is signed, with ``Content-Disposition: attachment``; the file passes
  ``konorctl audit verify FILE --trust-root root.json``. A Center without
  timestamp keys answers a 503 page before any byte of it.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.errors import bad_request
from konorkestra.center.app.web import ctx_of, db
from konorkestra.center.operators.apitokens import Role
from konorkestra.center.operators.checkpoint import signed_checkpoint
from konorkestra.center.store.engine import now
from konorkestra.center.ui.audit_chain import INLINE_ROWS, chain_status, export_lines
from konorkestra.center.ui.audit_view import AuditQuery, links, load_audit
from konorkestra.center.ui.sessions import Session
from konorkestra.center.ui.web import page, render
from konorkestra.trust.checkpoint import read_checkpoint


@page(Role.VIEWER)
async def audit_page(request: Request, session: Session) -> Response:
    try:
        query = AuditQuery.parse(request.query_params)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    engine = ctx_of(request).engine
    listing = await db(load_audit, engine, query)
    chain = await db(chain_status, engine, now(), budget=INLINE_ROWS)
    return render(
        request,
        session,
        "audit.html",
        nav="audit",
        partial="audit_live.html",
        listing=listing,
        chain=chain,
        links=links,
    )


@page(Role.VIEWER)
async def chain_page(request: Request, session: Session) -> Response:
    full = request.query_params.get("full") == "1"
    chain = await db(chain_status, ctx_of(request).engine, now(), full=full)
    return render(request, session, "audit_chain.html", chain=chain)


@page(Role.VIEWER)
async def export(request: Request, session: Session) -> Response:
    ctx = ctx_of(request)
    signed = await db(signed_checkpoint, ctx, None)
    assert signed is not None  # the head always exists (seq 0 for an empty log)
    head_seq = read_checkpoint(signed).head_seq
    lines = export_lines(ctx.engine, json.loads(signed), head_seq)
    name = f"konorkestra-audit-{head_seq}.jsonl"
    return StreamingResponse(
        (line.encode() for line in lines),
        media_type="application/x-ndjson",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/audit", audit_page, methods=["GET"]),
        Route("/audit/chain", chain_page, methods=["GET"]),
        Route("/audit/export", export, methods=["GET"]),
    ]
