"""The agent stream: one long-lived response per agent, carrying its desired state as it changes.

``GET /v1/agent/stream?have=<group>:<seq>,...`` (mTLS, like every agent route)
answers ``200`` with ``application/x-ndjson`` and keeps the body open::

    {"node": "n1", "releases": [...], "freshness": "<b64>", "wait": 0}\\n   <- at once
    \\n                                                                   <- heartbeat
    {"node": "n1", "releases": [<checkout #8>], "freshness": ..., ...}\\n  <- a new Release
    {"node": "n1", "releases": [], "freshness": "<newer>", "wait": 0}\\n   <- freshness refresh
    {"closed": "node_revoked"}\\n                                         <- then the body ends

Each JSON line is exactly a ``GET /v1/agent/desired`` answer
(:mod:`konorkestra.center.agentapi.answer`). The long-poll stays for agents
behind proxies that buffer responses; the agent falls back to it by itself.

Why (ADR 0014): a parked long-poll is re-requested every 55 s, each time a
full HTTP request with identity and authorization work; a stream is
authorized once per connection and costs a heartbeat write per period.

Invariants:

* Authorized once, when it opens (:func:`~konorkestra.center.nodes.guard.require_node`,
  the same 401/403 as every agent route, and the ``have`` scope rules S1–S2).
  A change of the node's row (revocation, renewal, enrollment; on this
  replica or, through the store's broadcast, another) re-checks it at once
  (:class:`OpenStreams`); a node no longer allowed gets ``{"closed":
  "node_revoked"}`` and the body ends. The stream also ends when the client
  certificate expires and after :attr:`StreamSettings.max_age` (jittered), so
  every connection is re-authenticated regularly and agents spread over
  replicas again.
* No lost Release: the stream subscribes to its Groups before its first read
  (as the long-poll does), and after each wake-up it reads the node's rows
  again and offers every Group whose sequence is above what it has offered
  or the agent said it has.
* A frame is sent when there is something new, and otherwise a freshness
  refresh every :attr:`StreamSettings.refresh` seconds (well inside the
  statement's TTL) and a heartbeat (an empty line) when nothing was written
  for :attr:`StreamSettings.heartbeat` seconds, so proxies and the agent can
  tell a quiet stream from a dead one; both periods are jittered down by up to
  :data:`JITTER` (never longer), so streams that opened together drift apart.
* A stopping Center (the notifier's ``closing``) ends every stream at once, a
  client that goes away ends its stream at once (``http.disconnect``), and a
  stream never holds a store connection while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import threading
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from konorkestra.center.agentapi.answer import answer, node_rows
from konorkestra.center.agentapi.api import AgentApi
from konorkestra.center.agentapi.notify import Subscription
from konorkestra.center.nodes.enrollment import EnrollmentService
from konorkestra.center.nodes.guard import authorized
from konorkestra.center.nodes.records import NodeRecord
from konorkestra.center.releases.desired import behind

HEARTBEAT = 45.0
"""Seconds of silence after which a heartbeat line is written (proxies often cut at 60 s)."""

JITTER = 0.2
"""Refreshes and heartbeats come after 80-100 % of their period: streams that opened
together (a Center restart, a fleet reconnecting) drift apart instead of writing in bursts
of ten thousand, which showed as a doubled fan-out time when a burst met a publish."""

MAX_AGE = 4 * 3600.0
"""Seconds a stream stays open at most (±10 %), then the agent reconnects."""


@dataclass(frozen=True)
class StreamSettings:
    """How often a stream writes when nothing happens, and how long it lives."""

    heartbeat: float = HEARTBEAT
    refresh: float = 120.0
    """Seconds between freshness refreshes (keep well under the statement's TTL)."""
    max_age: float = MAX_AGE

    @classmethod
    def for_ttl(cls, ttl: dt.timedelta) -> StreamSettings:
        """Refresh at 40 % of the freshness TTL (two refreshes fit before it expires)."""
        refresh = max(1.0, ttl.total_seconds() * 0.4)
        return cls(heartbeat=min(HEARTBEAT, refresh), refresh=refresh)


class OpenStreams:
    """The streams open on this Center, by node: a change of a node's row re-checks them.

    :meth:`node_changed` is a node cache drop listener: it may be called from
    any thread; the re-check happens on the event loop.
    """

    def __init__(self) -> None:
        self._by_node: dict[str, set[Subscription]] = {}
        self._recheck: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def opened(self, node_id: str, sub: Subscription) -> None:
        self._loop = asyncio.get_running_loop()
        with self._lock:
            self._by_node.setdefault(node_id, set()).add(sub)

    def closed(self, node_id: str, sub: Subscription) -> None:
        with self._lock:
            subs = self._by_node.get(node_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_node[node_id]
            self._recheck.discard(sub)

    def count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._by_node.values())

    def node_changed(self, node_id: str) -> None:
        """``node_id``'s row changed: its streams re-check it (thread-safe, never raises)."""
        with self._lock:
            subs = list(self._by_node.get(node_id, ()))
            self._recheck.update(subs)
        loop = self._loop
        if not subs or loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing: the streams end anyway
            loop.call_soon_threadsafe(_wake, subs)

    def must_recheck(self, sub: Subscription) -> bool:
        with self._lock:
            if sub in self._recheck:
                self._recheck.discard(sub)
                return True
            return False


def _wake(subs: list[Subscription]) -> None:
    for sub in subs:
        sub.event.set()


class AgentStream(Response):
    """The streaming response of one agent; see the module invariants."""

    media_type = "application/x-ndjson"

    def __init__(
        self,
        api: AgentApi,
        engine: Engine,
        service: EnrollmentService,
        streams: OpenStreams,
        node: NodeRecord,
        have: dict[str, int],
        *,
        settings: StreamSettings,
        expires: dt.datetime | None,
    ) -> None:
        # Not Response.__init__: it would declare the empty body's length (0).
        self.status_code, self.background = 200, None
        self.init_headers({"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self.api, self.engine, self.service, self.streams = api, engine, service, streams
        self.node, self.have, self.settings, self.expires = node, have, settings, expires

    def _ends_at(self, now: float) -> float:
        end = now + self.settings.max_age * random.uniform(0.9, 1.1)
        if self.expires is not None:
            left = (self.expires - dt.datetime.now(dt.UTC)).total_seconds()
            end = min(end, now + max(0.0, left))
        return end

    async def _allowed(self) -> bool:
        return await authorized(self.service, self.node.id) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            await self._run(send, gone)
        finally:
            gone.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _run(self, send: Send, gone: asyncio.Future[None]) -> None:
        api, settings, node = self.api, self.settings, self.node
        targets, entries = api.caches(self.engine)
        groups = sorted(node.groups)
        offered = dict(self.have)
        now = time.monotonic()
        ends, refresh_at, beat_at = self._ends_at(now), now, now + settings.heartbeat
        with api.notifier.subscribe(groups) as sub:
            gone.add_done_callback(lambda _f: sub.event.set())
            self.streams.opened(node.id, sub)
            try:
                while not (gone.done() or api.notifier.closing):
                    if self.streams.must_recheck(sub) and not await self._allowed():
                        await _write(send, b'{"closed":"node_revoked"}\n')
                        return
                    latest = await node_rows(targets, groups, node.id)
                    offer = behind(latest, offered)
                    now = time.monotonic()
                    if now >= ends:
                        return
                    if offer or now >= refresh_at:
                        frame = await answer(api, entries, node.id, offer, latest, waited=0.0)
                        await _write(send, frame + b"\n")
                        offered.update((r.group, r.sequence) for r in offer)
                        refresh_at = now + settings.refresh * random.uniform(1 - JITTER, 1)
                        beat_at = now + settings.heartbeat * random.uniform(1 - JITTER, 1)
                        await api.touch(self.engine, node.id)  # last_seen, at most every 30 s
                    elif now >= beat_at:
                        await _write(send, b"\n")
                        beat_at = now + settings.heartbeat
                    await sub.wait(max(0.0, min(refresh_at, beat_at, ends) - now))
            finally:
                self.streams.closed(node.id, sub)


async def _write(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has gone (``http.disconnect``)."""
    while (await receive())["type"] != "http.disconnect":
        pass
