"""The nodes pages: ``/ui/nodes`` (the fleet), ``/ui/nodes/{id}`` (who saw what), revoke.

Example::

    GET  /ui/nodes?group=checkout&q=web&page=2   # rows <tr data-node="{id}">
    GET  /ui/nodes/3f2a9c0d1e2b4a5f             # facts, Groups, processes <tr data-pid="{pid}">
    POST /ui/nodes/3f2a9c0d1e2b4a5f/revoke      # admins: csrf + reason, then 303 back

Invariants:

* Every page is ``viewer``; revoking is ``admin`` (:func:`~konorkestra.center.ui.web.page`
  refuses anyone else with a 403 page, and the form is shown to admins only).
* Revoking goes through the same
  :meth:`~konorkestra.center.nodes.enrollment.EnrollmentService.revoke_node`
  as ``POST /v1/nodes/{id}/revoke``: one ``node.revoked`` audit event whose actor
  is the session's token (plus the form's reason), and the node cache dropped,
  so the node's next request is refused.
* A bad filter is a 400 page, an unknown node a 404 page (never a 500).
* What a row says is decided in :mod:`konorkestra.center.ui.nodes_view`; the
  list and the node page are live regions (``nodes-live``, ``node-live``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.errors import ApiError, bad_request, not_found
from konorkestra.center.app.web import ctx_of, db
from konorkestra.center.operators.apitokens import Role
from konorkestra.center.store.engine import now
from konorkestra.center.ui.nodes_view import Clock, NodeQuery, load_node, load_nodes
from konorkestra.center.ui.sessions import Session
from konorkestra.center.ui.web import back, form_of, page, render

MAX_REASON = 500


def _clock(request: Request) -> Clock:
    enrollment = ctx_of(request).enrollment
    if enrollment is None:
        return Clock(now())
    return Clock(now(), enrollment.service.cert_lifetime)


@page(Role.VIEWER)
async def nodes_list(request: Request, session: Session) -> Response:
    try:
        query = NodeQuery.parse(request.query_params)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    listing = await db(load_nodes, ctx_of(request).engine, query, _clock(request))
    return render(
        request, session, "nodes.html", nav="nodes", partial="nodes_live.html", listing=listing
    )


@page(Role.VIEWER)
async def node_page(request: Request, session: Session) -> Response:
    node_id = request.path_params["node_id"]
    row = await db(load_node, ctx_of(request).engine, node_id, _clock(request))
    if row is None:
        raise not_found(f"No node {node_id[:80]!r}.")
    return render(
        request,
        session,
        "node.html",
        nav="nodes",
        partial="node_live.html",
        row=row,
        can_revoke=session.allows(Role.ADMIN),
    )


@page(Role.ADMIN)
async def revoke(request: Request, session: Session) -> Response:
    ctx = ctx_of(request)
    node_id = request.path_params["node_id"]
    reason = str((await form_of(request)).get("reason") or "").strip()
    if len(reason) > MAX_REASON:
        raise bad_request(f"The reason must be at most {MAX_REASON} characters.")
    if ctx.enrollment is None:
        raise ApiError(503, "This Center does not enroll nodes, so it cannot revoke them.")
    svc = ctx.enrollment.service
    node = await db(svc.get_node, node_id)
    if node is None:
        raise not_found(f"No node {node_id[:80]!r}.")
    done = await db(svc.revoke_node, node.id, by=session.actor, reason=reason or None)
    message = f"Node {node.name} revoked." if done else f"Node {node.name} was already revoked."
    return back(f"/ui/nodes/{node.id}", message)


def routes() -> list[BaseRoute]:
    return [
        Route("/nodes", nodes_list, methods=["GET"]),
        Route("/nodes/{node_id}", node_page, methods=["GET"]),
        Route("/nodes/{node_id}/revoke", revoke, methods=["POST"]),
    ]
