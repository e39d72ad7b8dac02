"""Node records in memory, so an agent request is authorized without a store round trip.

Example::

    cache = NodeCache()
    found = cache.get(node_id)                 # a record, None (unknown), or MISS
    if found is MISS:
        token = cache.begin()                  # before reading the store
        found = read_node_from_store(node_id)
        cache.fill(token, node_id, found)      # ignored if a drop happened meanwhile
    ...
    revoke_in_store(node_id)                   # committed
    cache.drop(node_id)                        # the next request reads the store again
    cache.drop_listeners.append(close_streams_of)   # told of every drop, after it

Invariants:

* Whoever writes a node row in this process (enroll, renew, revoke) calls
  :meth:`NodeCache.drop` after the transaction commits and before it returns,
  so a revocation is in force for the very next request.
* A fill that began before any drop is discarded (one generation counter for
  the whole cache), so a read racing with a revocation can never put the old,
  still-allowed record back. A hit never writes an entry back into the map (it
  touches the entry object in place), so a hit racing a drop cannot either.
* An entry lives ``ttl`` seconds after its last use (a hit refreshes it), and
  at most ``max_age`` seconds after it was read from the store. ``ttl`` is
  longer than an agent's long-poll wait (55 s), so a parked agent's re-poll is
  a hit, not a store read in a worker thread; ``max_age`` is the backstop for
  rows changed behind this process's back (another Center replica sharing the
  store, should its broadcast of the drop be missed), not the mechanism
  revocation relies on.
* Every :meth:`NodeCache.drop` calls each of :attr:`NodeCache.drop_listeners`
  with the node id, after the entry is gone and outside the cache's lock, in
  the thread that called ``drop`` (a worker thread for a revocation through the
  API, the event loop or a listener thread for a cross-replica broadcast):
  listeners must be thread-safe themselves. A listener that raises is logged;
  the others still run, and the drop stands.
* Thread-safe: fills and drops happen in worker threads, lookups on the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final, Generic, TypeVar

V = TypeVar("V")

log = logging.getLogger(__name__)


class Miss:
    def __repr__(self) -> str:
        return "MISS"


MISS: Final = Miss()
"""What :meth:`NodeCache.get` returns when it knows nothing (read the store)."""


class _Entry(Generic[V]):
    """One cached record: when it was read from the store and when last used."""

    __slots__ = ("filled", "record", "used")

    def __init__(self, record: V | None, at: float) -> None:
        self.record, self.filled, self.used = record, at, at


class NodeCache(Generic[V]):
    """A bounded, generation-guarded, expiring map from node id to record (or ``None``)."""

    def __init__(
        self,
        *,
        ttl: float = 120.0,
        max_age: float = 300.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl, self.max_age, self.max_entries, self.clock = ttl, max_age, max_entries, clock
        self._entries: dict[str, _Entry[V]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self.drop_listeners: list[Callable[[str], None]] = []
        """``listener(node_id)`` after every :meth:`drop` (thread-safe listeners only)."""

    def get(self, node_id: str) -> V | Miss | None:
        """The cached record (``None``: known not to exist), or ``MISS``; no lock, no I/O."""
        entry = self._entries.get(node_id)
        if entry is None:
            return MISS
        now = self.clock()
        if now - entry.used > self.ttl or now - entry.filled > self.max_age:
            return MISS
        entry.used = now  # in place: a dropped entry stays dropped
        return entry.record

    def begin(self) -> int:
        """A token to pass to :meth:`fill`; take it *before* reading the store."""
        return self._generation

    def fill(self, token: int, node_id: str, record: V | None) -> None:
        with self._lock:
            if token != self._generation:
                return  # a node row changed while this was read: do not cache it
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[node_id] = _Entry(record, self.clock())

    def drop(self, node_id: str) -> None:
        """Forget ``node_id`` (its row changed), then tell every drop listener."""
        with self._lock:
            self._generation += 1
            self._entries.pop(node_id, None)
        for listener in list(self.drop_listeners):
            try:
                listener(node_id)
            except Exception:
                log.exception("a node-cache drop listener failed for node %s", node_id)
