"""Node records in memory, so an agent request is authorized without a store round trip.

Example::

    cache = NodeCache(ttl=30.0)
    found = cache.get(node_id)                 # a record, None (unknown), or MISS
    if found is MISS:
        token = cache.begin()                  # before reading the store
        found = read_node_from_store(node_id)
        cache.fill(token, node_id, found)      # ignored if a drop happened meanwhile
    ...
    revoke_in_store(node_id)                   # committed
    cache.drop(node_id)                        # the next request reads the store again

Invariants:

* Whoever writes a node row in this process (enroll, renew, revoke) calls
  :meth:`NodeCache.drop` after the transaction commits and before it returns,
  so a revocation is in force for the very next request.
* A fill that began before any drop is discarded (one generation counter for
  the whole cache), so a read racing with a revocation can never put the old,
  still-allowed record back.
* Entries expire after ``ttl`` seconds: a backstop for rows changed behind this
  process's back (another Center replica sharing the store), not the
  mechanism revocation relies on.
* Thread-safe: fills happen in worker threads, lookups on the event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final, Generic, TypeVar

V = TypeVar("V")


class Miss:
    def __repr__(self) -> str:
        return "MISS"


MISS: Final = Miss()
"""What :meth:`NodeCache.get` returns when it knows nothing (read the store)."""


class NodeCache(Generic[V]):
    """A bounded, generation-guarded, expiring map from node id to record (or ``None``)."""

    def __init__(
        self,
        *,
        ttl: float = 30.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl, self.max_entries, self.clock = ttl, max_entries, clock
        self._entries: dict[str, tuple[V | None, float]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, node_id: str) -> V | Miss | None:
        entry = self._entries.get(node_id)
        if entry is None or self.clock() - entry[1] > self.ttl:
            return MISS
        return entry[0]

    def begin(self) -> int:
        """A token to pass to :meth:`fill`; take it *before* reading the store."""
        return self._generation

    def fill(self, token: int, node_id: str, record: V | None) -> None:
        with self._lock:
            if token != self._generation:
                return  # a node row changed while this was read: do not cache it
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[node_id] = (record, self.clock())

    def drop(self, node_id: str) -> None:
        with self._lock:
            self._generation += 1
            self._entries.pop(node_id, None)
