"""The agent-facing API (mTLS): desired state long-poll, blobs by digest, reports.

Wiring (``konorkestra.center.server.build`` does this before ``create_app``)::

    api = install_agent_api(ctx, timestamp_signers=[opened.signers["timestamp"]])
    # = ctx.services += [api.notifier]; ctx.releaser.listeners += [api.notifier.released];
    #   ctx.extra_routes += api.routes()

Routes (every one needs a verified node certificate: 401/403 otherwise, fail closed)::

    GET  /v1/agent/desired?have=<group>:<seq>,...&wait=55
         -> {"node": id, "releases": [{"group", "sequence", "id", "digest",
                                       "bundle": <base64 of the signed bundle bytes>}],
             "freshness": <base64 of a signed freshness bundle>, "wait": seconds held}
    GET  /v1/agent/blobs/{digest}   -> the bytes (403 unless a Release of a group in
                                       the node's scope references the blob)
    POST /v1/agent/reports          -> {"stored": n}   (body: konorkestra.center.agentreports)

Invariants:

* ``desired`` answers at once when a group in scope has a sequence above
  ``have``; otherwise it holds up to ``wait`` seconds (capped at 55) and answers
  as soon as a Release of one of its groups commits (a
  :class:`~konorkestra.center.notify.ReleaseNotifier` wake-up, no polling).
  It subscribes before it reads the store, so no Release is missed.
* Every ``desired`` answer carries a freshly signed freshness statement
  (timestamp role) listing the latest Release of every group in scope.
* Bundles are sent as base64 of the exact stored bytes: the agent verifies the
  bytes that were signed.
* Only groups of the calling node are read; a node learns nothing about others.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.agentreports import parse_report, store_report, touch
from konorkestra.center.context import CenterContext
from konorkestra.center.desired import (
    LatestRow,
    behind,
    freshness_entries,
    parse_have,
    parse_wait,
)
from konorkestra.center.errors import ApiError, bad_request, not_found
from konorkestra.center.notify import ReleaseNotifier
from konorkestra.center.routes.enroll import require_node
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.center.web import ctx_of, db, json_body, ok
from konorkestra.model.canonical import digest_of, is_digest
from konorkestra.trust import DEFAULT_FRESHNESS_TTL, FreshnessStatement, SigningKey, sign_freshness

R = schema.releases
TOUCH_EVERY = 30.0
"""Seconds between two ``last_seen`` updates caused by long-polls of one node."""


def latest_rows(engine: Engine, groups: Collection[str]) -> list[LatestRow]:
    """The latest Release of each of ``groups`` that has one."""
    if not groups:
        return []
    top = (
        sa.select(R.c.group, sa.func.max(R.c.sequence).label("seq"))
        .where(R.c.group.in_(list(groups)))
        .group_by(R.c.group)
        .subquery()
    )
    with reader(engine).connect() as conn:  # read-only: no write lock
        rows = conn.execute(
            sa.select(R.c.group, R.c.sequence, R.c.id, R.c.digest).join(
                top, sa.and_(R.c.group == top.c.group, R.c.sequence == top.c.seq)
            )
        ).all()
    return [LatestRow(r.group, r.sequence, r.id, r.digest) for r in rows]


def bundles(engine: Engine, ids: Collection[str]) -> dict[str, bytes]:
    """Signed bundle bytes by release id."""
    if not ids:
        return {}
    with reader(engine).connect() as conn:  # read-only: no write lock
        rows = conn.execute(sa.select(R.c.id, R.c.bundle).where(R.c.id.in_(list(ids)))).all()
    return {r.id: bytes(r.bundle) for r in rows}


def _file_digests(blob: bytes) -> frozenset[str]:
    import json

    try:
        files = json.loads(blob)["spec"].get("files", {})
        return frozenset(str(f["digest"]) for f in files.values())
    except (ValueError, KeyError, TypeError, AttributeError):
        return frozenset()


@dataclass
class AgentApi:
    """State shared by the agent routes: the notifier, the timestamp keys, caches."""

    notifier: ReleaseNotifier
    timestamp_signers: Sequence[SigningKey]
    freshness_ttl: dt.timedelta = DEFAULT_FRESHNESS_TTL
    max_wait: float = 55.0
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    _files: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _bundles: dict[str, str] = field(default_factory=dict, repr=False)
    _touched: dict[str, float] = field(default_factory=dict, repr=False)

    # -- store work (worker threads) -------------------------------------------------

    def find_blob(self, engine: Engine, groups: Collection[str], digest: str) -> bytes | None:
        """The blob ``digest`` if a Release of one of ``groups`` references it: a ConfigSet
        blob, a file of one, or a signed bundle (the agent stores bundles by digest too).

        Raises :class:`PermissionError` when no such Release references it.
        """
        if groups:
            with reader(engine).connect() as conn:  # read-only: no write lock
                if self._referenced(conn, groups, digest):
                    # Same connection: a second checkout while holding this one can
                    # exhaust the pool under load (every holder waiting for another).
                    b = schema.blobs
                    data = conn.execute(sa.select(b.c.data).where(b.c.digest == digest)).scalar()
                    return None if data is None else bytes(data)
                rows = conn.execute(sa.select(R.c.id).where(R.c.group.in_(list(groups))))
                ids = [r.id for r in rows]
                unknown = [i for i in ids if i not in self._bundles]
                if unknown:
                    found = conn.execute(sa.select(R.c.id, R.c.bundle).where(R.c.id.in_(unknown)))
                    for r in found:
                        self._bundles[r.id] = digest_of(bytes(r.bundle))
                for rid in ids:
                    if self._bundles.get(rid) == digest:
                        row = conn.execute(sa.select(R.c.bundle).where(R.c.id == rid)).first()
                        return None if row is None else bytes(row.bundle)
        raise PermissionError(digest)

    def _referenced(self, conn: sa.Connection, groups: Collection[str], digest: str) -> bool:
        rows = conn.execute(sa.select(R.c.configsets).where(R.c.group.in_(list(groups))))
        configsets = {str(c["digest"]) for r in rows for c in r.configsets}
        if digest in configsets:
            return True
        for cs in configsets:
            files = self._files.get(cs)
            if files is None:
                b = schema.blobs
                row = conn.execute(sa.select(b.c.data).where(b.c.digest == cs)).first()
                files = _file_digests(bytes(row.data)) if row is not None else frozenset()
                self._files[cs] = files
            if digest in files:
                return True
        return False

    def sign_freshness(self, node: str, latest: list[LatestRow]) -> bytes:
        statement = FreshnessStatement.create(
            node=node, latest=freshness_entries(latest), now=self.clock(), ttl=self.freshness_ttl
        )
        return sign_freshness(statement, self.timestamp_signers)

    # -- routes ------------------------------------------------------------------------

    async def desired(self, request: Request) -> Response:
        node = await require_node(request)
        try:
            have = parse_have(request.query_params.get("have"))
            wait = parse_wait(request.query_params.get("wait"), cap=self.max_wait)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        engine = ctx_of(request).engine
        groups = sorted(node.groups)
        await self._touch(engine, node.id)
        started = time.monotonic()
        deadline = started + wait
        with self.notifier.subscribe(groups) as sub:
            while True:
                latest = await db(latest_rows, engine, groups)
                offer = behind(latest, have)
                remaining = deadline - time.monotonic()
                if offer or remaining <= 0 or self.notifier.closing:
                    break
                await sub.wait(remaining)
        signed = await db(bundles, engine, [r.release_id for r in offer])
        releases = [
            {
                "group": r.group,
                "sequence": r.sequence,
                "id": r.release_id,
                "digest": r.digest,
                "bundle": base64.b64encode(signed[r.release_id]).decode("ascii"),
            }
            for r in offer
            if r.release_id in signed
        ]
        freshness = self.sign_freshness(node.id, latest)
        return ok(
            {
                "node": node.id,
                "releases": releases,
                "freshness": base64.b64encode(freshness).decode("ascii"),
                "wait": round(time.monotonic() - started, 3),
            }
        )

    async def blob(self, request: Request) -> Response:
        node = await require_node(request)
        digest = request.path_params["digest"]
        if not is_digest(digest):
            raise bad_request("a blob is named by its digest, sha256:<64 hex>", digest=digest)
        engine = ctx_of(request).engine
        try:
            data = await db(self.find_blob, engine, node.groups, digest)
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

    async def reports(self, request: Request) -> Response:
        node = await require_node(request)
        body = await json_body(request)
        try:
            report = parse_report(body)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        stored = await db(store_report, ctx_of(request).engine, node.id, report)
        self._touched[node.id] = time.monotonic()
        return ok({"stored": stored})

    async def _touch(self, engine: Engine, node_id: str) -> None:
        last = self._touched.get(node_id)
        if last is None or time.monotonic() - last > TOUCH_EVERY:
            self._touched[node_id] = time.monotonic()
            await db(touch, engine, node_id)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/agent/desired", self.desired, methods=["GET"]),
            Route("/v1/agent/blobs/{digest}", self.blob, methods=["GET"]),
            Route("/v1/agent/reports", self.reports, methods=["POST"]),
        ]


def install_agent_api(
    ctx: CenterContext,
    *,
    timestamp_signers: Sequence[SigningKey],
    freshness_ttl: dt.timedelta = DEFAULT_FRESHNESS_TTL,
    **kwargs: Any,
) -> AgentApi:
    """Add the agent API to ``ctx`` (call before ``create_app(ctx)``)."""
    api = AgentApi(ReleaseNotifier(), timestamp_signers, freshness_ttl, **kwargs)
    ctx.services = [*ctx.services, api.notifier]
    if ctx.releaser is not None:
        ctx.releaser.listeners.append(api.notifier.released)
    ctx.extra_routes = [*ctx.extra_routes, *api.routes()]
    return api
