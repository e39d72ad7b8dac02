"""The agent-facing API (mTLS): desired state long-poll, blobs by digest, reports.

Wiring (``konorkestra.center.server.build`` does this before ``create_app``)::

    api = install_agent_api(ctx, timestamp_signers=[opened.signers["timestamp"]])
    # = ctx.services += [api.notifier]; ctx.releaser.listeners += [api.notifier.released];
    #   ctx.extra_routes += api.routes()

Routes (every one needs a verified node certificate: 401/403 otherwise, fail closed)::

    GET  /v1/agent/desired?have=<group>:<seq>,...&wait=55
         -> {"node": id, "releases": [{"group", "sequence", "id", "digest",
                                       "bundle": <base64 of the signed bundle bytes>,
                                       "blobs": {<digest>: <base64>, ...}}],
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
* Every ``desired`` answer carries a signed freshness statement (timestamp
  role) for the calling node listing the latest Release of every group in
  scope. A node's statement is re-sent unchanged for at most
  :attr:`AgentApi.freshness_reuse` seconds while its groups' latest Releases
  stay the same (so its ``issuedAt`` never goes backwards); otherwise a new
  one is signed.
* Bundles are sent as base64 of the exact stored bytes: the agent verifies the
  bytes that were signed. An offered Release inlines its blobs (ConfigSet blobs,
  then their files) up to :data:`INLINE_MAX` bytes in all, so a small release
  needs no second round trip; the agent checks each against the signed digests
  exactly as a fetched one (ADR 0006). Larger blobs are fetched by digest.
* Only groups of the calling node are read; a node learns nothing about others.
* Every Group a request names is checked against the node's scope before
  anything is read or stored (rules S1–S3 of :mod:`konorkestra.center.agentscope`):
  a ``have`` entry or a report naming a Group outside it is ``403
  group_out_of_scope`` listing those Groups; a report crediting a Group with a
  release id of another Group (or of another sequence or digest) is ``400
  release_mismatch``. A refused report is refused whole: no row, no audit event,
  no ``last_seen``. A blob no Release of the node's Groups references is ``403
  blob_out_of_scope``.
* Nothing on the hot path waits on the store: latest Releases and answer
  pieces come from :mod:`konorkestra.center.agentcache` (a new Release
  invalidates its group before any parked request wakes), node records from the
  enrollment service's cache, and reports and ``last_seen`` go through one
  :class:`~konorkestra.center.reportwriter.ReportWriter` (group commit).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.agentcache import EntryCache, LatestCache
from konorkestra.center.agentreports import parse_report, store_reports, touch
from konorkestra.center.agentscope import report_groups, require_consistent
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
from konorkestra.center.reportwriter import ReportWriter
from konorkestra.center.routes.enroll import require_group_in_scope, require_node
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.center.web import ctx_of, db, json_body, ok
from konorkestra.model.canonical import digest_of, is_digest
from konorkestra.trust import DEFAULT_FRESHNESS_TTL, FreshnessStatement, SigningKey, sign_freshness

log = logging.getLogger(__name__)
R = schema.releases
INLINE_MAX = 64 * 1024
"""Bytes of blobs a desired-state answer inlines per offered Release."""
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


def release_entry(engine: Engine, release_id: str, inline_max: int = INLINE_MAX) -> bytes | None:
    """One offered Release as JSON bytes: its signed bundle and, within ``inline_max``
    bytes, its blobs (ConfigSet blobs first, then the files they name)."""
    b = schema.blobs
    with reader(engine).connect() as conn:  # read-only: no write lock
        row = conn.execute(
            sa.select(
                R.c.group, R.c.sequence, R.c.id, R.c.digest, R.c.bundle, R.c.configsets
            ).where(R.c.id == release_id)
        ).first()
        if row is None:
            return None
        inline: dict[str, bytes] = {}
        budget = inline_max
        wanted = [str(c["digest"]) for c in row.configsets]
        for step in (1, 2):
            found = conn.execute(sa.select(b.c.digest, b.c.data).where(b.c.digest.in_(wanted)))
            data = {r.digest: bytes(r.data) for r in found}
            files: list[str] = []
            for digest in wanted:
                blob = data.get(digest)
                if blob is not None and len(blob) <= budget and digest not in inline:
                    inline[digest] = blob
                    budget -= len(blob)
                if step == 1 and blob is not None:
                    files += sorted(_file_digests(blob))
            wanted = [d for d in dict.fromkeys(files) if d not in inline]
    entry = {
        "group": row.group,
        "sequence": row.sequence,
        "id": row.id,
        "digest": row.digest,
        "bundle": base64.b64encode(bytes(row.bundle)).decode("ascii"),
        "blobs": {d: base64.b64encode(v).decode("ascii") for d, v in inline.items()},
    }
    return json.dumps(entry, separators=(",", ":")).encode()


def _file_digests(blob: bytes) -> frozenset[str]:
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
    writer: ReportWriter | None = None
    freshness_reuse: float | None = None
    """Seconds a node's freshness statement is re-sent (default: a tenth of the TTL, <= 30)."""
    _files: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _bundles: dict[str, str] = field(default_factory=dict, repr=False)
    _touched: dict[str, float] = field(default_factory=dict, repr=False)
    _fresh: dict[str, tuple[tuple[Any, ...], float, bytes]] = field(
        default_factory=dict, repr=False
    )
    _latest: LatestCache | None = field(default=None, repr=False)
    _entries: EntryCache | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.freshness_reuse is None:
            self.freshness_reuse = min(30.0, self.freshness_ttl.total_seconds() / 10)

    def _caches(self, engine: Engine) -> tuple[LatestCache, EntryCache]:
        if self._latest is None or self._entries is None or self._engine is not engine:
            self._engine = engine
            latest = LatestCache(lambda groups: db(latest_rows, engine, groups))
            self.notifier.listeners.append(latest.invalidate)
            if self._latest is not None:
                self.notifier.listeners.remove(self._latest.invalidate)
            self._latest = latest
            self._entries = EntryCache(lambda rid: db(release_entry, engine, rid))
        return self._latest, self._entries

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

    def freshness(self, node: str, latest: list[LatestRow]) -> bytes:
        """The node's freshness bundle: the last one while still recent and still true."""
        key = tuple((r.group, r.sequence, r.digest) for r in latest)
        now = time.monotonic()
        last = self._fresh.get(node)
        if last is not None and last[0] == key and now - last[1] < (self.freshness_reuse or 0):
            return last[2]
        signed = self.sign_freshness(node, latest)
        if len(self._fresh) >= 100_000:
            self._fresh.clear()
        self._fresh[node] = (key, now, signed)
        return signed

    # -- routes ------------------------------------------------------------------------

    async def desired(self, request: Request) -> Response:
        node = await require_node(request)
        try:
            have = parse_have(request.query_params.get("have"))
            wait = parse_wait(request.query_params.get("wait"), cap=self.max_wait)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        require_group_in_scope(node, *have)
        engine = ctx_of(request).engine
        latest_cache, entries = self._caches(engine)
        groups = sorted(node.groups)
        await self._touch(engine, node.id)
        started = time.monotonic()
        deadline = started + wait
        with self.notifier.subscribe(groups) as sub:
            while True:
                latest = await latest_cache.get(groups)
                offer = behind(latest, have)
                remaining = deadline - time.monotonic()
                if offer or remaining <= 0 or self.notifier.closing:
                    break
                await sub.wait(remaining)
        pieces = [piece for r in offer if (piece := await entries.get(r.release_id)) is not None]
        freshness = base64.b64encode(self.freshness(node.id, latest))
        body = b"".join(
            [
                b'{"node":', json.dumps(node.id).encode(),
                b',"releases":[', b",".join(pieces),
                b'],"freshness":"', freshness,
                b'","wait":', json.dumps(round(time.monotonic() - started, 3)).encode(), b"}",
            ]
        )  # fmt: skip
        return Response(body, media_type="application/json")

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
        try:
            require_group_in_scope(node, *report_groups(report))
            require_consistent(report)
        except ApiError as exc:
            log.warning("refused a report of node %s: %s", node.id, exc.message)
            raise
        if self.writer is not None:
            stored = await self.writer.store(node.id, report)
        else:
            stored = (await db(store_reports, ctx_of(request).engine, [(node.id, report)]))[0]
        self._touched[node.id] = time.monotonic()
        return ok({"stored": stored})

    async def _touch(self, engine: Engine, node_id: str) -> None:
        last = self._touched.get(node_id)
        if last is None or time.monotonic() - last > TOUCH_EVERY:
            self._touched[node_id] = time.monotonic()
            if self.writer is not None:
                self.writer.touch(node_id)  # with the next batch of reports
            else:
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
    writer = kwargs.setdefault("writer", ReportWriter(ctx.engine))
    api = AgentApi(ReleaseNotifier(), timestamp_signers, freshness_ttl, **kwargs)
    ctx.services = [*ctx.services, api.notifier, *([writer] if writer is not None else [])]
    if ctx.releaser is not None:
        ctx.releaser.listeners.append(api.notifier.released)
    ctx.extra_routes = [*ctx.extra_routes, *api.routes()]
    return api
