"""Wake-ups for parked agent long-polls: "group G now has a Release with sequence S".

Example::

    notifier = ReleaseNotifier()
    ctx.services.append(notifier)                 # captures the event loop at start
    releaser.listeners.append(notifier.released)  # called after the release commits

    # in a long-poll handler (on the event loop):
    with notifier.subscribe({"checkout", "payments"}) as sub:
        if nothing_new_in_the_store():            # read *after* subscribing
            await sub.wait(timeout=55)            # True when woken, False on timeout

Invariants:

* No lost wake-up: a handler subscribes first and reads the store second, so a
  Release committed in between either shows up in that read or wakes the
  subscription (which stays set until it is waited on).
* :meth:`ReleaseNotifier.released` may be called from any thread (ingest and
  store work runs in worker threads); it never blocks and never raises. It must
  be called *after* the transaction holding the Release commits.
* ``listeners`` (in-memory caches of the store) run before any subscription
  wakes, so a woken request never reads a cache that predates its wake-up. A
  listener may return the reload it started: the group's subscriptions then
  wake when every such reload is done (or failed), and at the latest
  :data:`WAKE_DEADLINE` seconds after the delivery. So ten thousand woken
  streams find the new rows stored, rather than all queueing on one load.
* Waking costs one ``Event.set`` per subscription of the group: there is no
  polling anywhere. A new Release of a Group whose rollout decides what each
  node holds (:attr:`ReleaseNotifier.settled`) wakes nobody: no node's desired
  state changed, and the runner's decision that changes it is delivered as
  ``(group, 0)``, which always wakes. Subscriptions are removed when their ``with`` block ends.
* Draining: from :meth:`ReleaseNotifier.drain` on (the server has begun to
  stop), no subscription waits: every parked one is woken once, and one
  entered later starts woken. A handler that sees ``closing`` answers with what
  it has (for a long-poll: nothing new), so a stop never cancels a request.
  ``drain`` runs when shutdown *starts* (see :mod:`konorkestra.center.app.graceful`),
  ``stop`` when the app's lifespan ends, after every connection has closed.
* Several Center replicas: a PostgreSQL backend plugs in by calling
  ``NOTIFY konorkestra_release, '<group>:<sequence>'`` inside the releasing
  transaction (delivered only on commit) and running a ``LISTEN`` task that
  calls :meth:`ReleaseNotifier.deliver` for each notification, on every replica.
  This in-process notifier is that pair with the database left out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

WAKE_DEADLINE = 5.0
"""Seconds a delivery waits at most for its listeners' reloads before it wakes anyway."""
Listener = Callable[[str, int], "asyncio.Future[Any] | None"]
"""Told of each delivery ``(group, sequence)``; may return the reload it started."""


class Subscription:
    """A parked request's interest in some groups; see :meth:`ReleaseNotifier.subscribe`."""

    def __init__(self, notifier: ReleaseNotifier, groups: Collection[str]) -> None:
        self.notifier = notifier
        self.groups = frozenset(groups)
        self.event = asyncio.Event()
        self.woken_by: list[tuple[str, int]] = []

    def __enter__(self) -> Subscription:
        for group in self.groups:
            self.notifier._subs.setdefault(group, set()).add(self)
        if self.notifier.closing:
            self.event.set()  # the server is stopping: never park
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for group in self.groups:
            subs = self.notifier._subs.get(group)
            if subs is not None:
                subs.discard(self)
                if not subs:
                    del self.notifier._subs[group]

    async def wait(self, timeout: float) -> bool:
        """Wait until one of the groups gets a Release; ``False`` after ``timeout`` seconds."""
        if timeout <= 0:
            return self.event.is_set()
        try:
            async with asyncio.timeout(timeout):
                await self.event.wait()
        except TimeoutError:
            return False
        self.event.clear()
        return True


class ReleaseNotifier:
    """In-process broadcaster of new Releases; also a Center ``Service``."""

    name = "release-notify"

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.delivered = 0
        self.listeners: list[Listener] = []
        """Called on the event loop for each delivery, before subscriptions wake (caches);
        the reloads they return delay the wake-up until they are done."""
        self.closing = False
        """Set by :meth:`drain` (and :meth:`stop`): parked requests should answer now."""
        self.settled: Callable[[str], bool] = lambda _group: False
        """True when a new Release of the Group changes no node's desired state (its
        rollout decides that): its delivery runs the listeners but wakes nobody."""
        self.skipped = 0
        self._waking: set[asyncio.Task[None]] = set()
        """Deliveries waiting for their reloads (referenced until they wake)."""

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.closing = False

    def drain(self) -> None:
        """The server is stopping: wake every parked request; park no new one.

        Event-loop thread only; idempotent. Releases are still delivered until
        :meth:`stop`, so a request woken here reads the newest state.
        """
        if not self.closing:
            log.info("stopping: answering %d parked long-poll(s)", self.parked())
        self.closing = True
        for subs in list(self._subs.values()):
            for sub in subs:
                sub.event.set()

    async def stop(self) -> None:
        self.drain()
        self._loop = None

    def ready(self) -> tuple[bool, str]:
        return (self._loop is not None, "" if self._loop else "not started")

    def subscribe(self, groups: Collection[str]) -> Subscription:
        """A subscription to ``groups``; use it as a context manager on the event loop."""
        return Subscription(self, groups)

    def parked(self) -> int:
        """How many subscriptions are waiting (for metrics and tests)."""
        return len({s for subs in self._subs.values() for s in subs})

    def released(self, group: str, sequence: int) -> None:
        """A Release of ``group`` committed; thread-safe, never raises."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            if _on_loop(loop):
                self.deliver(group, sequence)
            else:
                loop.call_soon_threadsafe(self.deliver, group, sequence)
        except RuntimeError:  # loop closing
            log.debug("release notification for %s dropped: loop closed", group)

    def deliver(self, group: str, sequence: int) -> None:
        """Wake every subscription of ``group``. Event-loop thread only."""
        quiet = sequence > 0 and self.settled(group)  # before the listeners drop the cache
        reloads = [f for listener in self.listeners if (f := listener(group, sequence))]
        self.delivered += 1
        if quiet:
            self.skipped += 1
            return
        pending = [f for f in reloads if not f.done()]
        if not pending:
            self._wake(group, sequence)
            return
        task = asyncio.ensure_future(self._wake_when_loaded(pending, group, sequence))
        self._waking.add(task)
        task.add_done_callback(self._waking.discard)

    async def _wake_when_loaded(
        self, reloads: list[asyncio.Future[Any]], group: str, sequence: int
    ) -> None:
        """Wake ``group`` once its reloads are done (or failed), or at the deadline."""
        await asyncio.wait(reloads, timeout=WAKE_DEADLINE)
        self._wake(group, sequence)

    def _wake(self, group: str, sequence: int) -> None:
        for sub in list(self._subs.get(group, ())):
            sub.woken_by.append((group, sequence))
            sub.event.set()


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
