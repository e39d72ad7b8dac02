"""Batched reports to the Center: applied and refused releases, acks, metrics, stale state.

Example::

    reporter = Reporter(visibility, send=client.report, interval=2.0)
    task = asyncio.create_task(reporter.run())
    reporter.applied("checkout", "checkout-4-…", 4, "sha256:…")     # sent within ~0.5 s
    reporter.refused("checkout", "checkout-5-…", 5, "BadSignature", "…")
    reporter.stale("checkout", True)
    await reporter.close()                                          # last flush, then stop

Invariants:

* One report (``POST /v1/agent/reports``, shape in ``konorkestra.center.agentapi.reports``)
  carries everything pending: the agent's own items and the drained
  :class:`~konorkestra.agent.visibility.Visibility` events (SDK deliveries, acks,
  metrics, exec hooks).
* A change (applied, refused, error, stale flip) is sent after a short
  coalescing delay (:data:`COALESCE`, jittered by ±40 %): long enough for the
  apps' deliveries and acks of a new release to join the same report, and
  spread so that a fleet that applied a release at once does not report at
  once while the Center is still answering the rest of it. Visibility events
  go at least every ``interval`` seconds; a heartbeat (possibly empty) every
  ``heartbeat`` seconds keeps ``last_seen``.
* Nothing is lost to a Center outage: a failed send keeps the batch and retries
  with back-off. The queue is bounded (``max_pending`` items); past it the
  oldest items are dropped and counted in ``dropped``.
* A batch holds at most :data:`MAX_BATCH_ITEMS` items and about
  :data:`MAX_BATCH_BYTES` of JSON, within what the Center accepts (2,000 per
  list, 1 MiB per body); the rest waits for the next send, which follows at once.
* A batch the Center refuses for what it holds (:class:`BatchRefused`: 400,
  403, 413, 422) is dropped, counted and logged, never retried: resending the
  same bytes would be refused forever and hold back everything queued behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from konorkestra.agent.visibility import Visibility, event_to_json

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[object]]
COALESCE = 0.5
"""Seconds (mean) between a change and the report that carries it."""
MAX_BATCH_ITEMS = 1000
MAX_BATCH_BYTES = 512 * 1024


class BatchRefused(Exception):
    """The Center refused a report for its content; resending it cannot succeed."""


class Reporter:
    """Collects report items and sends them in batches; see the module docstring."""

    def __init__(
        self,
        visibility: Visibility,
        send: Send,
        *,
        interval: float = 2.0,
        heartbeat: float = 60.0,
        max_pending: int = 10_000,
        clock: Callable[[], float] = time.time,
        coalesce: float = COALESCE,
    ) -> None:
        self.visibility = visibility
        self.coalesce = coalesce
        self.send = send
        self.interval = interval
        self.heartbeat = heartbeat
        self.max_pending = max_pending
        self.clock = clock
        self._items: deque[tuple[str, dict[str, Any]]] = deque()
        self._stale: dict[str, bool] = {}
        self._dropped = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._last_sent = 0.0
        self.sent = 0
        self.failures = 0
        self.last_error: str | None = None

    # -- items ---------------------------------------------------------------------

    def _add(self, key: str, item: dict[str, Any]) -> None:
        item.setdefault("at", self.clock())
        self._items.append((key, item))
        while len(self._items) > self.max_pending:
            self._items.popleft()
            self._dropped += 1
        self._wake.set()

    def applied(self, group: str, release: str, sequence: int, digest: str) -> None:
        self._add("applied", {"group": group, "release": release, "sequence": sequence,
                              "digest": digest})  # fmt: skip

    def refused(
        self, group: str | None, release: str | None, sequence: int | None, code: str, reason: str
    ) -> None:
        self._add("refused", {"group": group, "release": release, "sequence": sequence,
                              "code": code, "reason": reason})  # fmt: skip

    def error(self, kind: str, message: str) -> None:
        self._add("errors", {"kind": kind, "message": message})

    def stale(self, group: str, flag: bool) -> None:
        self._stale[group] = flag
        self._wake.set()

    def wake(self) -> None:
        """Send soon (e.g. a hook finished)."""
        self._wake.set()

    def pending(self) -> int:
        return len(self._items) + self.visibility.pending() + len(self._stale)

    # -- sending -------------------------------------------------------------------

    def _batch(self) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]], dict[str, bool]]:
        items: list[tuple[str, dict[str, Any]]] = []
        size = 0
        while self._items and len(items) < MAX_BATCH_ITEMS and size < MAX_BATCH_BYTES:
            queued = self._items.popleft()
            items.append(queued)
            size += _size(queued[1])
        stale, self._stale = self._stale, {}
        drained = self.visibility.drain(max(0, MAX_BATCH_ITEMS - len(items)))
        for event in drained.events:
            as_json = event_to_json(event)
            if size < MAX_BATCH_BYTES:
                items.append(("events", as_json))
                size += _size(as_json)
            else:  # over the byte budget: next batch
                self._items.append(("events", as_json))
        body: dict[str, Any] = {"applied": [], "refused": [], "events": [], "errors": []}
        for key, item in items:
            body[key].append(item)
        body["stale"] = dict(stale)
        body["dropped"] = self._dropped + drained.dropped
        self._dropped = 0
        return body, items, stale

    async def flush(self) -> bool:
        """Send everything pending now; ``False`` (and everything kept) when it failed."""
        body, items, stale = self._batch()
        try:
            await self.send(body)
        except BatchRefused as exc:
            self._dropped += len(items)
            self.last_error = f"refused: {exc}"
            log.warning("the Center refused a report; dropping its %d items: %s", len(items), exc)
            return True  # sent and answered; retrying the same batch cannot help
        except Exception as exc:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.debug("report failed, keeping %d items: %s", len(items), self.last_error)
            for item in reversed(items):
                self._items.appendleft(item)
            for group, flag in stale.items():
                self._stale.setdefault(group, flag)
            self._dropped += body["dropped"]
            while len(self._items) > self.max_pending:
                self._items.popleft()
                self._dropped += 1
            return False
        self.sent += 1
        self.failures = 0
        self.last_error = None
        self._last_sent = time.monotonic()
        if self.pending():
            self._wake.set()  # more than one batch was waiting
        return True

    async def run(self) -> None:
        """Send batches until :meth:`close`."""
        retry = 0
        while not self._stopping:
            timeout = self.interval if retry == 0 else min(30.0, self.interval * 2**retry)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            if self._stopping:
                break
            if self._wake.is_set():
                self._wake.clear()
                # let related changes (the apps' acks) join the batch
                await asyncio.sleep(self.coalesce * random.uniform(0.6, 1.4))
            due = time.monotonic() - self._last_sent >= self.heartbeat
            if self.pending() or due:
                retry = 0 if await self.flush() else min(retry + 1, 5)

    async def close(self, *, final_flush: bool = True, timeout: float = 5.0) -> None:
        """Stop :meth:`run`; try one last send of what is pending."""
        self._stopping = True
        self._wake.set()
        if final_flush and self.pending():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.flush()


def _size(item: dict[str, Any]) -> int:
    return len(json.dumps(item, separators=(",", ":"), default=str))
