"""What the UDS server serves: committed releases of the node's groups, and their staleness.

Example::

    served = ServedState(scope={"checkout"}, clock=clock)
    served.load(store)                          # at start (worker thread is fine)
    uds = UdsServer(served, path); served.attach(uds)
    served.committed(release)                   # on the loop, after store.commit: publishes
    served.fresh_until(expires_at + skew)       # after each verified freshness statement

Invariants:

* ``current`` only answers for groups in the node's scope, from an in-memory
  snapshot refreshed on each commit: the event loop never waits on the store.
* A group is stale when no verified freshness statement covers *now*: before
  the first one, and once ``expires + clock skew`` has passed (TUF "freeze"
  defence). The committed release keeps being served either way.
* Every change of the stale flag is pushed to watchers (``set_stale``) exactly
  when it happens: a timer fires at the deadline, nothing polls.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Collection
from typing import Protocol

from konorkestra.agent.store import AgentStore, CommittedRelease, StoreError

log = logging.getLogger(__name__)


class Subscribers(Protocol):
    """Who hears of commits and staleness: :class:`~konorkestra.agent.uds.UdsServer` is one.

    Declared here so the served state never imports the server: the server reads
    the state (``current``, ``stale``), the state only emits through this.
    """

    def publish(self, group: str) -> None:
        """A new release of ``group`` was committed. Loop thread only."""
        ...

    def set_stale(self, group: str, flag: bool) -> None:
        """``group``'s stale flag is now ``flag``. Loop thread only."""
        ...


Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ServedState:
    """A :class:`~konorkestra.agent.udswire.StateSource` over the agent's committed state."""

    def __init__(self, scope: Collection[str], *, clock: Clock = utcnow) -> None:
        self.scope = frozenset(scope)
        self.clock = clock
        self.snapshots: dict[str, CommittedRelease] = {}
        self.deadline: dt.datetime | None = None
        self._uds: Subscribers | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._was_stale = True
        self.on_stale: Callable[[bool], None] | None = None
        """Called with the new flag whenever staleness flips (for reports)."""

    def attach(self, uds: Subscribers) -> None:
        self._uds = uds

    def load(self, store: AgentStore) -> None:
        """Read every group's committed release from the store."""
        for group in sorted(self.scope):
            try:
                rel = store.current(group)
            except StoreError as exc:
                log.error("group %s cannot be served: %s", group, exc)
                continue
            if rel is not None:
                self.snapshots[group] = rel

    # -- StateSource -------------------------------------------------------------------

    def current(self, group: str) -> CommittedRelease | None:
        return self.snapshots.get(group) if group in self.scope else None

    def stale(self, group: str) -> bool:
        return self.is_stale()

    def is_stale(self) -> bool:
        return self.deadline is None or self.clock() > self.deadline

    # -- changes (event loop) ------------------------------------------------------------

    def committed(self, release: CommittedRelease) -> None:
        """A new release of its group is committed: serve it and notify watchers."""
        self.snapshots[release.group] = release
        if self._uds is not None:
            self._uds.publish(release.group)

    def fresh_until(self, deadline: dt.datetime) -> None:
        """A verified freshness statement holds until ``deadline`` (expiry + skew)."""
        if self.deadline is None or deadline > self.deadline:
            self.deadline = deadline
        self._check()

    def _check(self) -> None:
        stale = self.is_stale()
        if stale != self._was_stale:
            self._was_stale = stale
            log.info("config is now %s", "STALE (no fresh statement)" if stale else "fresh")
            if self._uds is not None:
                for group in sorted(self.scope):
                    self._uds.set_stale(group, stale)
            if self.on_stale is not None:
                self.on_stale(stale)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not stale and self.deadline is not None:
            delay = (self.deadline - self.clock()).total_seconds() + 0.05
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._timer = loop.call_later(max(0.0, delay), self._check)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
