"""What the long-poll route answers, kept in memory: latest Releases and answer pieces.

Example::

    latest = LatestCache(load=lambda groups: db(latest_rows, engine, groups))
    notifier.listeners.append(latest.invalidate)     # a new Release drops its group
    rows = await latest.get(["checkout", "payments"])

    entries = EntryCache(load=lambda rid: db(release_entry, engine, rid))
    piece = await entries.get(row.release_id)        # JSON bytes of one offered Release

Invariants:

* :class:`LatestCache` never serves a group's row after
  :meth:`LatestCache.invalidate` ran for it: invalidation bumps a generation,
  and a load that began before it is returned to its callers (who are
  subscribed, so they are woken and read again) but never stored. Entries
  also expire after ``ttl`` seconds, bounding staleness for Releases this
  process was not told about.
* Concurrent requests that miss the same groups share one load (one query for a
  thousand woken long-polls, not a thousand) — but only a load that began after
  the latest invalidation, so a request woken by a Release never gets rows read
  before it.
* :class:`EntryCache` holds immutable data only (a Release's signed bytes and
  blobs never change), bounded to ``size`` Releases, least recently used out.
* Event-loop only: no locks; loads run wherever ``load`` sends them.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

from konorkestra.model.types import ReleaseId


class _PerGroup(Protocol):
    @property
    def group(self) -> str: ...


T = TypeVar("T", bound=_PerGroup)
LoadEntry = Callable[[ReleaseId], Awaitable[bytes | None]]


class LatestCache(Generic[T]):
    """One value per group (its latest Release, or its per-node targets), shared by every
    long-poll."""

    def __init__(
        self,
        load: Callable[[list[str]], Awaitable[list[T]]],
        *,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.load, self.ttl, self.clock = load, ttl, clock
        self._rows: dict[str, tuple[T | None, float]] = {}
        self._loading: dict[tuple[int, tuple[str, ...]], asyncio.Future[dict[str, T | None]]] = {}
        self._generation = 0
        self.loads = 0

    def invalidate(self, group: str, _sequence: int = 0) -> None:
        """A Release of ``group`` committed (a notifier listener; event loop only)."""
        self._generation += 1
        self._rows.pop(group, None)

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
            key = (self._generation, tuple(sorted(missing)))
            loading = self._loading.get(key)
            if loading is None:
                loading = asyncio.ensure_future(self._load(*key))
                self._loading[key] = loading
                loading.add_done_callback(lambda _f: self._loading.pop(key, None))
            found.update(await asyncio.shield(loading))
        return [row for group in groups if (row := found.get(group)) is not None]

    async def _load(self, generation: int, groups: tuple[str, ...]) -> dict[str, T | None]:
        self.loads += 1
        rows: dict[str, T] = {r.group: r for r in await self.load(list(groups))}
        out: dict[str, T | None] = {g: rows.get(g) for g in groups}
        if generation == self._generation:
            at = self.clock()
            for group, row in out.items():
                self._rows[group] = (row, at)
        return out


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
        loading = self._loading.get(release_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(release_id))
            self._loading[release_id] = loading
            loading.add_done_callback(lambda _f: self._loading.pop(release_id, None))
        return await asyncio.shield(loading)

    async def _load(self, release_id: ReleaseId) -> bytes | None:
        entry = await self.load(release_id)
        if entry is not None:
            self._entries[release_id] = entry
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return entry
