"""The agent-facing API (mTLS): desired state long-poll, blobs by digest, reports.

Registered by the app factory through :func:`routes` when ``ctx.agent_api`` is
set (wiring: :mod:`konorkestra.center.agentapi.api`).

Routes (every one needs a verified node certificate: 401/403 otherwise, fail closed)::

    GET  /v1/agent/desired?have=<group>:<seq>,...&wait=55
         -> {"node": id, "releases": [{"group", "sequence", "id", "digest",
                                       "bundle": <base64 of the signed bundle bytes>,
                                       "blobs": {<digest>: <base64>, ...}}],
             "freshness": <base64 of a signed freshness bundle>, "wait": seconds held}
    GET  /v1/agent/stream?have=<group>:<seq>,...
         -> application/x-ndjson held open: one desired answer per line, at once and on
            every change; empty heartbeat lines (konorkestra.center.agentapi.stream)
    GET  /v1/agent/blobs/{digest}   -> the bytes (403 unless a Release of a group in
                                       the node's scope references the blob)
    POST /v1/agent/reports          -> {"stored": n}   (body: konorkestra.center.agentapi.reports)

Invariants:

* ``desired`` answers at once when a group in scope has a sequence above
  ``have``; otherwise it holds up to ``wait`` seconds (capped at 55) and answers
  as soon as a Release of one of its groups commits (a
  :class:`~konorkestra.center.agentapi.notify.ReleaseNotifier` wake-up, no polling).
  It subscribes before it reads the store, so no Release is missed.
* Desired state is per node: each Group's current rollout says which Release
  the calling node should hold (:class:`~konorkestra.center.releases.desired.GroupTargets`,
  rule D1 of the rollout engine); a node outside the current wave is offered
  only the stable Release. A rollout's move wakes the Group's parked
  long-polls like a new Release does.
* Every ``desired`` answer carries a signed freshness statement (timestamp
  role) for the calling node listing, for every group in scope, the Release
  that node should hold (:mod:`konorkestra.center.agentapi.freshness`), so an
  agent outside the canary is current, not "behind", on the stable Release.
* Offered Releases are the pieces of :mod:`konorkestra.center.agentapi.entries`
  (bundles as the exact signed bytes, small blobs inlined).
* Only groups of the calling node are read; a node learns nothing about others.
* Every Group a request names is checked against the node's scope before
  anything is read or stored (rules S1–S3 of :mod:`konorkestra.center.agentapi.scope`):
  a ``have`` entry or a report naming a Group outside it is ``403
  group_out_of_scope`` listing those Groups; a report crediting a Group with a
  release id of another Group (or of another sequence or digest) is ``400
  release_mismatch``. A refused report is refused whole: no row, no audit event,
  no ``last_seen``. A blob no Release of the node's Groups references is ``403
  blob_out_of_scope`` (:mod:`konorkestra.center.agentapi.blobs`).
* Nothing on the hot path waits on the store (see :mod:`konorkestra.center.agentapi.api`).
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.agentapi.answer import answer, node_rows
from konorkestra.center.agentapi.api import AgentApi
from konorkestra.center.agentapi.reportrows import store_reports
from konorkestra.center.agentapi.reports import Report, parse_report
from konorkestra.center.agentapi.scope import mismatches, out_of_scope, report_groups
from konorkestra.center.agentapi.stream import AgentStream, OpenStreams, StreamSettings
from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.errors import ApiError, bad_request, not_found
from konorkestra.center.app.web import ctx_of, db, json_body, ok
from konorkestra.center.nodes.guard import node_service, require_node
from konorkestra.center.nodes.records import NodeRecord
from konorkestra.center.pki.identity import NodeAuthError, peer_certificate
from konorkestra.center.releases.desired import behind, parse_have, parse_wait
from konorkestra.model.canonical import is_digest
from konorkestra.model.types import GroupName

log = logging.getLogger(__name__)


def require_consistent(report: Report) -> None:
    """Raise ``400 release_mismatch`` (naming the first items) unless S3 holds."""
    problems = mismatches(report)
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        shown = "; ".join(problems[:3]) + more
        raise ApiError(
            400,
            f"the report credits a group with a release of another: {shown}",
            code="release_mismatch",
            details={"items": problems[:20]},
        )


def require_group_in_scope(node: NodeRecord, *groups: GroupName | str) -> None:
    """Raise a 403 ``group_out_of_scope`` :class:`NodeAuthError` naming every one of
    ``groups`` outside the node's scope (:func:`out_of_scope`, S2)."""
    outside = out_of_scope(node.groups, groups)
    if outside:
        names = ", ".join(outside[:10]) + (", …" if len(outside) > 10 else "")
        what = f"groups {names} are" if len(outside) > 1 else f"group {names} is"
        error = NodeAuthError(403, "group_out_of_scope", f"{what} not in this node's scope")
        error.details["groups"] = outside[:100]
        raise error


async def desired(api: AgentApi, request: Request) -> Response:
    """``GET /v1/agent/desired``: the long-poll."""
    node = await require_node(request)
    try:
        have = parse_have(request.query_params.get("have"))
        wait = parse_wait(request.query_params.get("wait"), cap=api.max_wait)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    require_group_in_scope(node, *have)
    engine = ctx_of(request).engine
    targets_cache, entries = api.caches(engine)
    groups = sorted(node.groups)
    await api.touch(engine, node.id)
    started = time.monotonic()
    deadline = started + wait
    with api.notifier.subscribe(groups) as sub:
        while True:
            latest = await node_rows(targets_cache, groups, node.id)
            offer = behind(latest, have)
            remaining = deadline - time.monotonic()
            if offer or remaining <= 0 or api.notifier.closing:
                break
            await sub.wait(remaining)
    body = await answer(api, entries, node.id, offer, latest, waited=time.monotonic() - started)
    return Response(body, media_type="application/json")


async def stream(
    api: AgentApi, streams: OpenStreams, settings: StreamSettings, request: Request
) -> Response:
    """``GET /v1/agent/stream``: the long-lived stream (see :mod:`.stream`)."""
    node = await require_node(request)
    try:
        have = parse_have(request.query_params.get("have"))
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    require_group_in_scope(node, *have)
    cert = peer_certificate(request)
    return AgentStream(
        api, ctx_of(request).engine, node_service(request), streams, node, have,
        settings=settings, expires=None if cert is None else cert.not_valid_after_utc,
    )  # fmt: skip


async def blob(api: AgentApi, request: Request) -> Response:
    """``GET /v1/agent/blobs/{digest}``: a blob a Release in the node's scope references."""
    node = await require_node(request)
    digest = request.path_params["digest"]
    if not is_digest(digest):
        raise bad_request("a blob is named by its digest, sha256:<64 hex>", digest=digest)
    engine = ctx_of(request).engine
    try:
        data = await db(api.blobs.find_blob, engine, node.groups, digest)
    except PermissionError:
        raise ApiError(
            403,
            f"blob {digest[:23]}… is not part of a release in this node's scope",
            code="blob_out_of_scope",
        ) from None
    if data is None:
        raise not_found(f"no blob {digest}")
    headers = {"Cache-Control": "private, max-age=31536000, immutable", "ETag": f'"{digest}"'}
    return Response(data, media_type="application/octet-stream", headers=headers)


async def reports(api: AgentApi, request: Request) -> Response:
    """``POST /v1/agent/reports``: what the node saw, stored whole or refused whole."""
    node = await require_node(request)
    body = await json_body(request)
    try:
        report = parse_report(body)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    try:
        require_group_in_scope(node, *report_groups(report))
        require_consistent(report)
    except ApiError as exc:
        log.warning("refused a report of node %s: %s", node.id, exc.message)
        raise
    if api.writer is not None:
        stored = await api.writer.store(node.id, report)
    else:
        stored = (await db(store_reports, ctx_of(request).engine, [(node.id, report)]))[0]
    api.seen(node.id)
    api.reported(report_groups(report))
    return ok({"stored": stored})


def routes(ctx: CenterContext) -> list[BaseRoute]:
    """The agent routes bound to ``ctx.agent_api`` (none without one)."""
    api = ctx.agent_api
    if api is None:
        return []

    async def get_desired(request: Request) -> Response:
        return await desired(api, request)

    streams, settings = OpenStreams(), StreamSettings.for_ttl(api.freshness_ttl)
    if ctx.enrollment is not None:
        ctx.enrollment.service.cache.drop_listeners.append(streams.node_changed)

    async def get_stream(request: Request) -> Response:
        return await stream(api, streams, settings, request)

    async def get_blob(request: Request) -> Response:
        return await blob(api, request)

    async def post_reports(request: Request) -> Response:
        return await reports(api, request)

    return [
        Route("/v1/agent/desired", get_desired, methods=["GET"]),
        Route("/v1/agent/stream", get_stream, methods=["GET"]),
        Route("/v1/agent/blobs/{digest}", get_blob, methods=["GET"]),
        Route("/v1/agent/reports", post_reports, methods=["POST"]),
    ]
