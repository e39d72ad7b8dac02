"""The rollout runner: the one Center task that drives every Group's rollout.

Example (what :func:`konorkestra.center.app.server.build` wires)::

    runner = RolloutRunner(engine, releaser, notify=agent_api.notifier.released)
    releaser.listeners.append(runner.poke)                  # a new Release
    agent_api.report_listeners.append(runner.reported)      # a report stored
    ctx.services.append(runner)

Invariants:

* One runner drives the rollouts of a store. On PostgreSQL it holds a
  session advisory lock (:data:`RUNNER_LOCK`) on a connection of its own while
  it drives (:class:`~konorkestra.center.store.leader.LeaderLock`), checked
  every :data:`LOCK_CHECK` seconds and before each Group's step: a runner
  whose session died stops deciding within a second. A second Center's runner
  stays passive and tries again every :attr:`RolloutRunner.interval` seconds,
  so it takes over when the first one stops or its connection dies. (Every
  write also checks the rollout's revision,
  :mod:`konorkestra.center.rollouts.store`, so even two runners could never
  interleave decisions.)
* A pass visits the Groups that need a decision: a Release without a rollout,
  a rollout that still runs, or a queued command. It runs when poked (a new
  Release, a command, a stored report about a Group the last pass visited —
  a report about any other Group cannot move a rollout), when the earliest stored deadline
  (wave deadline, bake end) falls due, and at least every ``interval``
  seconds; passes are at least ``min_gap`` seconds apart, and a pass is
  followed by at least as much time without one as it took, so a storm of
  reports costs one pass per gap, not one per report, and never more than
  about half of a core.
* After a pass changed a Group's desired state, ``notify(group, 0)`` wakes its
  parked long-polls (and drops the cached desired state first); a rollback
  Release it signed is announced like any other.
* A failing step is logged and retried on the next pass; it never stops the
  runner. Deadlines are absolute times in the store, so a restarted Center
  resumes with the time that was left.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable

from sqlalchemy.engine import Connection, Engine
from starlette.concurrency import run_in_threadpool

from konorkestra.center.app.metrics import CenterMetrics
from konorkestra.center.releases.queries import latest_releases
from konorkestra.center.releases.signer import Releaser
from konorkestra.center.rollouts import store
from konorkestra.center.rollouts.fleet import MetricMemory
from konorkestra.center.rollouts.fleetmemory import FleetMemories
from konorkestra.center.rollouts.step import Moved, Quiet, needs_rollout, step_group
from konorkestra.center.store.engine import WRITE_LOCK, reader
from konorkestra.center.store.engine import now as utcnow
from konorkestra.center.store.leader import LeaderLock

log = logging.getLogger(__name__)
LOCK_CHECK = 0.5
"""Seconds between checks that the driving runner still holds its lock (PostgreSQL)."""
RUNNER_LOCK = WRITE_LOCK + 1
"""The PostgreSQL advisory lock key the driving runner holds (never the store's write lock:
held for a whole session, that one would stop every write)."""


def groups_to_visit(conn: Connection) -> set[str]:
    """Groups that need a decision now: a Release without a rollout (:func:`needs_rollout`),
    a rollout that still runs, or a queued command."""
    rows = store.current_all(conn)
    visit: set[str] = set(store.pending_groups(conn))
    latest = latest_releases(conn)
    visit.update(g for g, release in latest.items() if needs_rollout(release, rows.get(g)))
    visit.update(name for name, row in rows.items() if not row.state.terminal)
    return visit


def next_due(moved: list[Moved]) -> dt.datetime | None:
    """The earliest deadline of the rollouts a pass left running (None: none has one)."""
    return min((m.next_at for m in moved if m.active and m.next_at is not None), default=None)


class RolloutRunner:
    """A Center service (``start``/``stop``/``ready``)."""

    name = "rollout-runner"

    def __init__(
        self,
        engine: Engine,
        releaser: Releaser,
        *,
        notify: Callable[[str, int], None],
        clock: Callable[[], dt.datetime] = utcnow,
        interval: float = 5.0,
        min_gap: float = 0.05,
        metrics: CenterMetrics | None = None,
    ) -> None:
        self.engine, self.releaser, self.notify, self.clock = engine, releaser, notify, clock
        self.metrics = metrics
        self.interval, self.min_gap = interval, min_gap
        self.passes = 0
        self.driving = False
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = LeaderLock(engine, RUNNER_LOCK, what="the rollouts")
        self._watch: asyncio.Task[None] | None = None
        self._passed: asyncio.Event | None = None
        self._memory: dict[str, MetricMemory] = {}
        """Per Group: the app metrics read so far for its rollout (see ``fleet``)."""
        self._fleets = FleetMemories()
        """Per Group and Release: its fleet, read incrementally (``fleetmemory``)."""
        self._quiet: dict[str, Quiet] = {}
        """Per Group: the inputs of its last decision that changed nothing (``step.Quiet``)."""
        self._active: frozenset[str] = frozenset()
        """Groups the last pass visited: reports about others cannot move a rollout."""
        self._postgres = engine.dialect.name == "postgresql"

    def poke(self, *_args: object) -> None:
        """Something changed (a Release, a command): decide soon."""
        if self._wake is not None:
            self._wake.set()

    def reported(self, groups: frozenset[str]) -> None:
        """A report about ``groups`` was stored: decide soon if one of them is rolling out."""
        if groups & self._active:
            self.poke()

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._wake.set()
        self._passed = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=self.name)
        if self._postgres:
            self._watch = asyncio.create_task(self._watch_lock(), name=f"{self.name}-lock")

    async def stop(self) -> None:
        for task in (self._task, self._watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._watch = None
        await run_in_threadpool(self._release_lock)

    def ready(self) -> tuple[bool, str]:
        return (self._task is not None, "" if self._task is not None else "not started")

    async def run_once(self) -> list[Moved]:
        """One pass over the Groups that need a decision (tests call it directly)."""
        if not await run_in_threadpool(self._hold_lock):
            self._end_pass()
            return []
        visit = await run_in_threadpool(self._visit)
        self._active = frozenset(visit)
        moved = []
        for group in sorted(visit):
            if not self.driving:
                break  # the lock was lost during this pass: another Center decides now
            for _attempt in range(3):
                began = time.perf_counter()
                try:
                    memory = self._memory.setdefault(group, MetricMemory())
                    done = await run_in_threadpool(
                        step_group, self.engine, self.releaser, group, self.clock(), memory,
                        self._fleets, self._quiet,
                    )  # fmt: skip
                except Exception:
                    log.exception("rollout step for group %s failed; retrying next pass", group)
                    self._count("failed", began)
                    break
                self._count("retried" if done.retry else "changed" if done.changed else "unchanged",
                            began)  # fmt: skip
                if not done.retry:
                    moved.append(done)
                    if done.released:
                        self.releaser.announce(done.released)
                        if self.metrics is not None:
                            self.metrics.releases.labels("rollback").inc(len(done.released))
                    if done.changed:
                        self.notify(group, 0)
                    break
        self._end_pass()
        return moved

    def _end_pass(self) -> None:
        self.passes += 1
        ended, self._passed = self._passed, asyncio.Event()
        if ended is not None:
            ended.set()

    def _count(self, outcome: str, began: float) -> None:
        if self.metrics is not None:
            self.metrics.rollout_decisions.labels(outcome).inc()
            self.metrics.rollout_decision_seconds.observe(time.perf_counter() - began)

    async def passed(self, timeout: float) -> bool:
        """Wait until the next pass ends (False after ``timeout`` seconds)."""
        if self._passed is None:
            return False
        try:
            await asyncio.wait_for(self._passed.wait(), timeout=max(0.0, timeout))
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            started = time.monotonic()
            self._wake.clear()
            try:
                due = next_due(await self.run_once())
            except Exception:
                log.exception("rollout pass failed")
                due = None
            took = time.monotonic() - started
            timeout = self.interval
            if due is not None:
                timeout = min(timeout, max(0.0, (due - self.clock()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            # At least min_gap between pass starts, and at least as long as the pass took
            # after it ends: under a storm of reports the runner uses at most about half
            # of a core, and the agents' answers and reports keep the rest.
            gap = max(self.min_gap, 2 * took) - (time.monotonic() - started)
            if gap > 0:
                await asyncio.sleep(gap)  # a throttle between passes, not a wait for a condition

    def _visit(self) -> set[str]:
        with reader(self.engine).connect() as conn:
            return groups_to_visit(conn)

    def _hold_lock(self) -> bool:
        """True when this runner drives (always on SQLite; the advisory lock on PostgreSQL)."""
        self.driving = self._lock.hold()
        return self.driving

    def _release_lock(self) -> None:
        self._lock.release()
        self.driving = False

    async def _watch_lock(self) -> None:
        """While driving, check the lock every :data:`LOCK_CHECK` s: lost, stop at once."""
        while True:
            await asyncio.sleep(LOCK_CHECK)  # a period, not a wait for a condition
            if self.driving and not await run_in_threadpool(self._hold_lock):
                log.warning("rollout runner: lost the advisory lock; another Center drives")
