"""The ingest worker: one task that looks at the repository whenever asked.

Example::

    service = IngestService(source, processor, metrics, poll_interval=30)
    ctx.services.append(service); ctx.ingest = service
    ticket = service.trigger("webhook")          # from a route
    await service.wait_for(ticket, timeout=10)   # optional

Invariants:

* Exactly one ingest pass runs at a time (a single asyncio task drives them),
  so commits are processed strictly in order; Git and database work runs in a
  worker thread and never blocks the event loop.
* Triggers are coalesced: any number of triggers during a pass cause exactly
  one more pass. A ticket is served by the first pass that *starts* after it
  was issued, so a caller that waits for its ticket sees its push processed.
* Wake-ups come from the watcher (local repos), the webhook, and a timer
  (``poll_interval``; for remote repos, the fetch interval) as a safety net.
* A pass that fails (repository unreadable, fetch failed, a bug) is logged,
  counted and retried on the next wake-up; the last good state keeps serving.
* Several Center replicas (PostgreSQL): only the replica holding the ingest
  :class:`~konorkestra.center.store.leader.LeaderLock` runs passes. A task
  checks the lock every :data:`LEAD_CHECK` seconds (a standby tries to take it
  just as often); a pass stops before its next commit once the lock is lost,
  so a replica that loses its store connection stops driving within about a
  second. A standby forwards each trigger to the leader (``forward(ticket)``,
  a broadcast) and its ticket is served when the leader reports a pass that
  began after it (:meth:`IngestService.remote_done`); the leader reports the
  tickets it was asked for after the pass (``served(origin, ticket)``).
* No commit is ingested twice, even by two replicas that both believe they
  lead: a commit, its Releases and their audit records are one transaction
  (:mod:`~konorkestra.center.ingest.process`) and ``commits.sha`` is unique, so
  the second insert fails and rolls back whole; a killed leader's unfinished
  transaction rolls back and the next leader ingests that commit from scratch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from konorkestra.center.app.metrics import CenterMetrics
from konorkestra.center.ingest.gitsource import GitSource
from konorkestra.center.ingest.process import CommitProcessor
from konorkestra.center.ingest.watcher import RefWatcher
from konorkestra.center.store.engine import iso, now
from konorkestra.center.store.leader import LeaderLock

log = logging.getLogger("konorkestra.center.ingest")
LEAD_CHECK = 0.5
"""Seconds between checks of the ingest leader lock (and a standby's tries to take it)."""


class IngestService:
    """Serialized Git ingest; a :class:`~konorkestra.center.app.context.Service`."""

    name = "git-ingest"

    def __init__(
        self,
        source: GitSource,
        processor: CommitProcessor,
        metrics: CenterMetrics,
        *,
        poll_interval: float = 30.0,
        watch: bool = True,
        leader: LeaderLock | None = None,
    ) -> None:
        self.source, self.processor, self.metrics = source, processor, metrics
        self.leader = leader
        self.forward: Callable[[int], None] | None = None
        """A standby's way to ask the leader for a pass (set by the server on PostgreSQL)."""
        self.served: Callable[[str, int], None] | None = None
        """The leader's way to tell a standby its ticket was served."""
        self._asked: dict[str, int] = {}
        self._forwarded = 0
        self._lead_task: asyncio.Task[None] | None = None
        self.poll_interval = poll_interval
        self.watch = watch and source.url is None
        self._requested = 0
        self._done = 0
        self._passes = 0
        self._last_error: str | None = None
        self._last_pass: str | None = None
        self._last_commit: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._watcher: RefWatcher | None = None
        self._wake: asyncio.Event | None = None
        self._changed: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake, self._changed = asyncio.Event(), asyncio.Condition()
        if self.watch:
            self._watcher = RefWatcher(self.source.git_dir, self._from_thread)
            self._watcher.start()
        if self.leader is not None:
            await asyncio.to_thread(self.leader.hold)
            self._lead_task = asyncio.create_task(self._keep_lead(), name="git-ingest-lead")
        self.trigger("start")
        self._task = asyncio.create_task(self._run(), name="git-ingest")

    async def stop(self) -> None:
        self._stopping = True
        if self._watcher is not None:
            self._watcher.stop()
        if self._wake is not None:
            self._wake.set()
        if self._lead_task is not None:
            self._lead_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lead_task
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=30)  # let a running pass finish
        if self.leader is not None:
            await asyncio.to_thread(self.leader.release)

    def leads(self) -> bool:
        """True when this replica ingests (always with a single Center)."""
        return self.leader is None or self.leader.held

    async def _keep_lead(self) -> None:
        assert self.leader is not None
        while True:
            await asyncio.sleep(LEAD_CHECK)  # the lock check's timer
            was = self.leader.held
            if await asyncio.to_thread(self.leader.hold) and not was:
                self.trigger("took the ingest lead")

    def asked(self, origin: str, ticket: int) -> None:
        """Another replica was asked to ingest (event loop); the leader runs a pass for it."""
        self._asked[origin] = max(ticket, self._asked.get(origin, 0))
        if self.leads():
            self.trigger(f"replica {origin}")

    def remote_done(self, ticket: int) -> None:
        """The leader served this replica's ``ticket`` (event loop)."""
        if ticket > self._done:
            self._done = ticket
            asyncio.get_running_loop().create_task(self._announce())

    async def _announce(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    def _from_thread(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.trigger, "watcher")

    def trigger(self, reason: str) -> int:
        self._requested += 1
        log.debug("ingest requested (%s), ticket %d", reason, self._requested)
        if self._wake is not None:
            self._wake.set()
        return self._requested

    async def wait_for(self, ticket: int, timeout: float) -> bool:
        assert self._changed is not None
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self._done >= ticket)
        except TimeoutError:
            return False
        return True

    def ready(self) -> tuple[bool, str]:
        if self.leader is not None and self.leader.checked and not self.leader.held:
            return True, ""  # a standby: the leader ingests
        if self._passes == 0:
            return False, "the first ingest pass has not finished"
        return True, ""

    def status(self) -> dict[str, Any]:
        return {
            "repo": self.source.label,
            "branch": self.source.branch,
            "passes": self._passes,
            "pending": self._requested > self._done,
            "leader": self.leads(),
            "last_pass_at": self._last_pass,
            "last_error": self._last_error,
            "last_commit": self._last_commit,
        }

    async def _run(self) -> None:
        assert self._wake is not None and self._changed is not None
        while not self._stopping:
            if not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            if self._stopping:
                return
            self._wake.clear()
            if not self.leads():
                if self.forward is not None and self._requested > self._forwarded:
                    self._forwarded = self._requested
                    self.forward(self._requested)
                continue
            serving, asked = self._requested, self._asked
            self._asked = {}
            await asyncio.to_thread(self.run_once, self.leads)
            if not self.leads():
                continue  # lost the lead mid-pass: the next leader serves these tickets
            self._done = max(self._done, serving)
            if self.served is not None:
                for origin, ticket in asked.items():
                    self.served(origin, ticket)
            async with self._changed:
                self._changed.notify_all()

    def run_once(self, keep_going: Callable[[], bool] = lambda: True) -> None:
        """One look at the repository: fetch (remote), then process new commits in order.

        Blocking; the worker calls it from a thread, with ``keep_going`` = "this
        replica still leads" (checked before each commit). Tests and tools may
        call it directly while the worker is not running.
        """
        try:
            self.source.refresh()
            for meta in self.source.new_commits(self.processor.known):
                if not keep_going():
                    log.warning("ingest pass stopped: this Center no longer leads ingest")
                    break
                started = time.perf_counter()
                outcome = self.processor.process(meta)
                self.metrics.ingest_seconds.observe(time.perf_counter() - started)
                self.metrics.commits.labels(outcome.status).inc()
                self.metrics.releases.labels("ingest").inc(len(outcome.releases))
                self._last_commit = {"sha": meta.sha, "status": outcome.status}
                ids = ", ".join(r.id for r in outcome.releases) or "none"
                log.info(
                    "commit %s %s (%d errors); releases: %s",
                    meta.sha[:12],
                    outcome.status,
                    outcome.errors,
                    ids,
                )
            self._last_error = None
        except Exception as exc:  # keep serving; retry on the next wake-up
            self._last_error = str(exc) or type(exc).__name__
            self.metrics.ingest_errors.inc()
            log.error("ingest pass failed: %s", self._last_error, exc_info=exc)
        finally:
            self._passes += 1
            self._last_pass = iso(now())
            self.metrics.last_ingest.set_to_current_time()
