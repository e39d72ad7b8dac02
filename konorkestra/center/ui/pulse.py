"""Live updates for the dashboard: one poller per Center, Server-Sent Events per tab.

Example::

    pulse = Pulse(engine)                    # a Center service (started by the app)
    async for version in pulse.changes():    # one per open dashboard tab
        yield f"event: changed\\ndata: {version}\\n\\n"   # htmx: hx-trigger="sse:changed"

Invariants:

* What changes a page is a new audit event (every Release, rollout transition,
  command, enrollment, revocation, commit verdict) or a new agent report (acks,
  failures, process views). :func:`fingerprint` reads the two newest ids, so the
  check is two index lookups whatever the store holds; it works across Centers
  sharing one PostgreSQL because it reads the store, not this process's memory.
* The store is polled every :data:`POLL` seconds, and only while at least one
  tab listens; a change reaches every listening tab within ``POLL`` plus the
  tab's spacing (:data:`SPACING`: a tab is told at most twice a second, so a
  fleet acking at once costs each tab two re-renders a second, not hundreds).
* A tab with nothing to hear gets a keep-alive every :data:`KEEPALIVE` seconds.
* When the Center begins to stop, every stream ends at once (it is a
  :class:`~konorkestra.center.app.factory.Parks` service), so the graceful stop
  never waits on a browser tab.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader

POLL = 0.25
SPACING = 0.5
KEEPALIVE = 15.0


def fingerprint(engine: Engine) -> tuple[int, int]:
    """``(newest audit seq, newest report id)``: changes whenever a page would."""
    with reader(engine).connect() as conn:
        seq = conn.execute(sa.select(sa.func.max(schema.audit.c.seq))).scalar()
        rid = conn.execute(sa.select(sa.func.max(schema.node_reports.c.id))).scalar()
    return int(seq or 0), int(rid or 0)


class Pulse:
    """The dashboard's change feed (a Center service that parks SSE streams)."""

    name = "ui-pulse"

    def __init__(self, engine: Engine, *, poll: float = POLL) -> None:
        self.engine, self.poll = engine, poll
        self.version = 0
        self._seen: tuple[int, int] | None = None
        self._changed: asyncio.Condition | None = None
        self._listeners = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self.drain()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def ready(self) -> tuple[bool, str]:
        return True, ""

    def parked(self) -> int:
        return self._listeners

    def drain(self) -> None:
        """The Center is stopping: every stream ends, no new one starts."""
        self._stopping = True
        if self._changed is not None:
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def _run(self) -> None:
        while True:
            if self._listeners:
                seen: tuple[int, int] | None
                try:
                    seen = await run_in_threadpool(fingerprint, self.engine)
                except Exception:  # the store is down: keep the last version, try again
                    seen = self._seen
                if seen != self._seen:
                    self._seen = seen
                    self.version += 1
                    await self._notify()
            await asyncio.sleep(self.poll)

    def _moved(self, seen: int) -> Callable[[], bool]:
        return lambda: self.version != seen or self._stopping

    async def changes(self) -> AsyncIterator[int | None]:
        """Versions as they change (the current one first); ``None`` is a keep-alive."""
        if self._changed is None or self._stopping:
            return
        changed = self._changed
        self._listeners += 1
        try:
            seen = self.version
            yield seen
            while not self._stopping:
                async with changed:
                    try:
                        await asyncio.wait_for(changed.wait_for(self._moved(seen)), KEEPALIVE)
                    except TimeoutError:
                        yield None
                        continue
                if self._stopping:
                    return
                seen = self.version
                yield seen
                await asyncio.sleep(SPACING)  # changes meanwhile are told after it
        finally:
            self._listeners -= 1
