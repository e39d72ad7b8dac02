"""What the long-poll route answers, kept in memory: latest Releases and answer pieces.

Example::

    entries = EntryCache(load=lambda rid: db(release_entry, engine, rid))
    latest = LatestCache(load=lambda groups: db(latest_rows, engine, groups),
                         prefetched=lambda rows: entries.prefetch(ids_of(rows)))
    notifier.listeners.append(latest.invalidate)     # a new Release drops its group ...
    rows = await latest.get(["checkout", "payments"])  # ... and starts its reload at once
    piece = await entries.get(row.release_id)        # JSON bytes of one offered Release

Invariants:

* :class:`LatestCache` never serves a group's row after
  :meth:`LatestCache.invalidate` ran for it: invalidation bumps a generation,
  and a load that began before it is returned to its callers (who are
  subscribed, so they are woken and read again) but never stored, nor joined
  by a later request. Entries also expire after ``ttl`` seconds, bounding
  staleness for Releases this process was not told about.
* Concurrent requests that miss the same groups share one load (one query for a
  thousand woken long-polls, not a thousand) — but only a load that began after
  the latest invalidation, so a request woken by a Release never gets rows read
  before it. A request joins any such load that covers every group it misses.
* An invalidation starts the reload of every group invalidated and not stored
  since (and of any expired one) at once, when called on a running loop as the
  notifier's listeners are, and returns it: the notifier wakes the group's
  requests when it is done, so they find the rows stored instead of ten
  thousand of them waiting on one load (and slowing it down: the load runs in
  a worker thread that shares the interpreter with them). Its rows, once
  stored, go to ``prefetched`` (the answer pieces of the Releases they name are
  loaded there, before they are asked for); the reload ends when the loads
  ``prefetched`` returns have ended too, so the woken requests find those
  pieces stored as well. Two invalidations in a row cost two loads; only the
  newer one's rows are kept.
* :class:`EntryCache` holds immutable data only (a Release's signed bytes and
  blobs never change), bounded to ``size`` Releases, least recently used out.
  :meth:`EntryCache.prefetch` starts loads without waiting for them; a load
  shared by a prefetch and requests is one load.
* Event-loop only: no locks; loads run wherever ``load`` sends them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from konorkestra.model.types import ReleaseId


class _PerGroup(Protocol):
    @property
    def group(self) -> str: ...


T = TypeVar("T", bound=_PerGroup)
LoadEntry = Callable[[ReleaseId], Awaitable[bytes | None]]

log = logging.getLogger(__name__)


class LatestCache(Generic[T]):
    """One value per group (its latest Release, or its per-node targets), shared by every
    long-poll."""

    def __init__(
        self,
        load: Callable[[list[str]], Awaitable[list[T]]],
        *,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        prefetched: Callable[[list[T]], Collection[asyncio.Future[Any]] | None] | None = None,
    ) -> None:
        self.load, self.ttl, self.clock, self.prefetched = load, ttl, clock, prefetched
        self._rows: dict[str, tuple[T | None, float]] = {}
        self._loading: list[_Load[T]] = []
        self._dropped: set[str] = set()
        """Groups invalidated and not stored since: what the next prefetch reloads."""
        self._generation = 0
        self.loads = 0

    def peek(self, group: str) -> T | None:
        """The value held for ``group`` now, if any (no load, no expiry check)."""
        entry = self._rows.get(group)
        return None if entry is None else entry[0]

    def invalidate(self, group: str, _sequence: int = 0) -> asyncio.Future[Any] | None:
        """A Release of ``group`` committed (a notifier listener; event loop only): drop its
        row and start reloading it at once (see the module invariants). Returns that load
        (the notifier wakes the group's requests when it is done), None without a loop."""
        self._generation += 1
        self._rows.pop(group, None)
        self._dropped.add(group)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return None  # no loop (a test, a shutdown): the next request loads
        now = self.clock()
        expired = {g for g, (_row, at) in self._rows.items() if now - at > self.ttl}
        return self._start(frozenset(self._dropped | expired), prefetch=True)

    async def get(self, groups: Sequence[str]) -> list[T]:
        """The values of those ``groups`` that have one."""
        now = self.clock()
        found: dict[str, T | None] = {}
        missing = []
        for group in groups:
            entry = self._rows.get(group)
            if entry is None or now - entry[1] > self.ttl:
                missing.append(group)
            else:
                found[group] = entry[0]
        if missing:
            # Join only a load that began after the last invalidation: an older one
            # may hold the rows a woken request must not see again.
            wanted = frozenset(missing)
            joinable = (
                load.future
                for load in self._loading
                if load.generation == self._generation and wanted <= load.groups
            )
            loading = next(joinable, None)
            if loading is None:
                loading = self._start(wanted, prefetch=False)
            loaded = await asyncio.shield(loading)
            found.update((group, loaded.get(group)) for group in missing)
        return [row for group in groups if (row := found.get(group)) is not None]

    def _start(self, groups: frozenset[str], *, prefetch: bool) -> asyncio.Future[dict[str, T]]:
        generation = self._generation
        future = asyncio.ensure_future(self._load(groups, generation, prefetch))
        load = _Load(generation, groups, future)
        self._loading.append(load)
        future.add_done_callback(lambda _f: self._loading.remove(load))
        if prefetch:
            future.add_done_callback(_log_failure)
        return future

    async def _load(self, groups: frozenset[str], generation: int, prefetch: bool) -> dict[str, T]:
        self.loads += 1
        ordered = sorted(groups)
        rows: dict[str, T] = {r.group: r for r in await self.load(ordered)}
        if generation == self._generation:
            at = self.clock()
            for group in ordered:
                self._rows[group] = (rows.get(group), at)
            self._dropped.difference_update(ordered)
            if prefetch and self.prefetched is not None:
                try:
                    started = self.prefetched(list(rows.values()))
                except Exception:  # a hint only: the rows are stored and returned
                    log.exception("the cache's prefetched hook failed")
                    started = None
                if started:  # a delivery's wake-up waits for them too (their errors are logged)
                    await asyncio.wait(started)
        return rows


def _log_failure(future: asyncio.Future[Any]) -> None:
    """Retrieve a finished load's error (a prefetch may have no other reader)."""
    if not future.cancelled() and future.exception() is not None:
        log.warning("a cache load failed: %s", future.exception())


@dataclass(frozen=True, eq=False)
class _Load(Generic[T]):
    """A load in flight: the generation it began in, its groups, its result."""

    generation: int
    groups: frozenset[str]
    future: asyncio.Future[dict[str, T]]


class EntryCache:
    """Pre-encoded answer pieces per Release id (immutable, LRU-bounded)."""

    def __init__(self, load: LoadEntry, *, size: int = 256) -> None:
        self.load, self.size = load, size
        self._entries: OrderedDict[ReleaseId, bytes] = OrderedDict()
        self._loading: dict[ReleaseId, asyncio.Future[bytes | None]] = {}

    async def get(self, release_id: ReleaseId) -> bytes | None:
        entry = self._entries.get(release_id)
        if entry is not None:
            self._entries.move_to_end(release_id)
            return entry
        loading = self._loading.get(release_id) or self._start(release_id)
        return await asyncio.shield(loading)

    def prefetch(self, release_ids: Iterable[ReleaseId]) -> list[asyncio.Future[bytes | None]]:
        """Start loading those of ``release_ids`` not held (does not wait); the loads of
        those not held, started now or before."""
        loads = []
        for release_id in release_ids:
            if release_id not in self._entries:
                loads.append(self._loading.get(release_id) or self._start(release_id))
        return loads

    def _start(self, release_id: ReleaseId) -> asyncio.Future[bytes | None]:
        loading = asyncio.ensure_future(self._load(release_id))
        self._loading[release_id] = loading
        loading.add_done_callback(lambda _f: self._loading.pop(release_id, None))
        loading.add_done_callback(_log_failure)  # a prefetch's failure is nobody's else
        return loading

    async def _load(self, release_id: ReleaseId) -> bytes | None:
        entry = await self.load(release_id)
        if entry is not None:
            self._entries[release_id] = entry
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return entry
