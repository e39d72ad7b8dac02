"""The sync loop: follow the Center's stream, or long-poll it, forever; back off on trouble.

Example::

    await follow(syncer)            # what Syncer.run does; until cancelled, never raises

Two ways to hear from the Center, the same answers either way
(:class:`~konorkestra.agent.centerclient.Desired`, applied by ``Syncer.handle``):

* **stream** (the default, ``sync = "stream"``): one ``GET /v1/agent/stream``
  held open for hours; the Center writes an answer at once, on every change
  and with each freshness refresh, and a heartbeat line when quiet.
* **long-poll** (``sync = "long-poll"``, and the fallback): ``GET
  /v1/agent/desired`` held up to ``poll_wait`` seconds, asked again at once.

Invariants:

* Center trouble (unreachable, HTTP errors, garbage, a stream gone quiet for
  :data:`STREAM_IDLE` seconds) never stops serving: the loop backs off with
  jitter (exponential, capped at ``backoff_max``) and retries, saying so once
  per outage (:mod:`konorkestra.agent.outage`). With several Center URLs each
  transport failure moves to the next one.
* A Center without the stream route, or a stream whose first answer does not
  arrive within :data:`STREAM_FIRST` seconds (a proxy that buffers), makes the
  loop long-poll for :data:`STREAM_RETRY` seconds before it tries streaming again.
* A stream the Center ends (it stops, the connection's age, a certificate
  renewal) is followed again at once, with what the store holds now.
* Offers that are all refused are retried with growing delays (a failed blob
  fetch may heal), never in a tight loop: a stream is closed and reopened
  after the delay, a long-poll asked again after it.
* Long-poll only: a Center that keeps answering early with nothing new is
  polled every ``fallback_poll`` seconds instead (an early answer followed by
  a failure is a Center that stopped, not one that answers early); the
  long-poll never asks to be held longer than half of what is left of the
  freshness statement.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Protocol

from konorkestra.agent.centerclient import CenterClient, CenterError, Desired, StreamUnsupported
from konorkestra.agent.config import AgentConfig
from konorkestra.agent.freshness import FreshnessKeeper
from konorkestra.agent.outage import Outage

log = logging.getLogger(__name__)

STREAM_IDLE = 120.0
"""Seconds without a byte (the Center writes a heartbeat every 45 s) before a stream is dead."""

STREAM_FIRST = 30.0
"""Seconds the first answer of a stream may take (it is written at once)."""

STREAM_RETRY = 600.0
"""Seconds of long-polling after the stream could not be used, before trying it again."""


class Stats(Protocol):
    """What the loop records for ``agent status`` (``sync.SyncStats``)."""

    last_sync: float | None
    last_error: str | None
    failures: int
    mode: str


class Syncing(Protocol):
    """What the loop needs of the syncer (``sync.Syncer``): it never imports it."""

    config: AgentConfig
    client: CenterClient
    fresh: FreshnessKeeper

    @property
    def stats(self) -> Stats: ...

    def have(self) -> dict[str, int]: ...

    async def handle(self, answer: Desired) -> int: ...


class Loop:
    """The state of one agent's sync loop; :func:`follow` runs it."""

    def __init__(self, syncer: Syncing) -> None:
        self.syncer = syncer
        self.outage = Outage()
        self.refusing = 0
        self.shorts = 0
        self.stream_again = 0.0 if syncer.config.sync == "stream" else float("inf")

    async def failed(self, exc: CenterError) -> None:
        """Log once per outage, record, and wait the jittered back-off."""
        s = self.syncer
        delay = min(s.config.backoff_max, 0.5 * 2 ** min(self.outage.failures + 1, 16))
        delay *= random.uniform(0.5, 1.0)
        level, line = self.outage.failed(str(exc), delay, now=time.monotonic())
        log.log(level, "%s", line)  # once per outage: a stopping Center is routine
        s.stats.failures = self.outage.failures
        s.stats.last_error = str(exc)
        self.shorts = 0  # an early answer followed by a failure: the Center went away
        await asyncio.sleep(delay)

    def answered(self, answer: Desired) -> None:
        s = self.syncer
        if back := self.outage.recovered(now=time.monotonic()):
            log.info("%s", back)
        log.debug("the Center answered: %d release(s), held %.1fs",
                  len(answer.offers), answer.held)  # fmt: skip
        s.stats.failures = 0
        s.stats.last_error = None
        s.stats.last_sync = time.time()

    async def applied(self, answer: Desired, committed: int) -> bool:
        """After an answer: ``False`` (after a growing delay) when its offers were all refused."""
        if answer.offers and not committed:
            # Refused (or a blob failed): retry, but never spin on a misbehaving Center.
            self.refusing += 1
            delay = min(self.syncer.config.fallback_poll, 2.0 ** min(self.refusing, 16))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            return False
        self.refusing = 0
        return True

    async def stream(self) -> None:
        """Follow one stream until it ends; raises CenterError / StreamUnsupported."""
        s = self.syncer
        have = await asyncio.to_thread(s.have)
        s.stats.mode = "stream"
        async for answer in s.client.stream(have, idle=STREAM_IDLE, first=STREAM_FIRST):
            self.answered(answer)
            if not await self.applied(answer, await s.handle(answer)):
                return  # reopen with what the store holds now
        log.debug("the Center ended the stream; opening a new one")

    async def poll(self) -> None:
        """One long-poll and what follows it; raises CenterError."""
        s = self.syncer
        wait = s.fresh.poll_wait()
        have = await asyncio.to_thread(s.have)
        started = time.monotonic()
        answer = await s.client.desired(have, wait)
        self.answered(answer)
        committed = await s.handle(answer)
        took = time.monotonic() - started
        await self.applied(answer, committed)
        if not answer.offers and wait >= 4 and took < wait / 2:
            self.shorts += 1
        else:
            self.shorts = 0
        s.stats.mode = "fallback-poll" if self.shorts >= 3 else "long-poll"
        if self.shorts >= 3:
            await asyncio.sleep(s.config.fallback_poll * random.uniform(0.9, 1.1))

    async def once(self) -> None:
        """One stream followed to its end, or one long-poll; never raises CenterError."""
        try:
            if time.monotonic() >= self.stream_again:
                try:
                    await self.stream()
                    return
                except StreamUnsupported as exc:
                    log.warning("streaming from the Center is not possible (%s); long-polling "
                                "for %.0f s", exc, STREAM_RETRY)  # fmt: skip
                    self.stream_again = time.monotonic() + STREAM_RETRY
            await self.poll()
        except CenterError as exc:
            await self.failed(exc)


async def follow(syncer: Syncing) -> None:
    """Sync forever (until cancelled); see the module invariants."""
    loop = Loop(syncer)
    while True:
        await loop.once()
