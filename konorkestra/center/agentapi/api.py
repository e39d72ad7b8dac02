"""The agent API's state: what the agent routes share, built once by the Center's assembly.

Wiring (:func:`konorkestra.center.app.server.build` does this; tests alike)::

    api = AgentApi(ReleaseNotifier(), [timestamp_key], freshness_ttl, writer=ReportWriter(engine))
    releaser.listeners.append(api.notifier.released)       # a new Release wakes long-polls
    ctx = CenterContext(..., services=[..., *api.services], agent_api=api)
    create_app(ctx)     # adds konorkestra.center.agentapi.routes.routes(ctx)

Invariants:

* Nothing on the hot path waits on the store: latest Releases and answer
  pieces come from :mod:`konorkestra.center.agentapi.cache` (a new Release
  invalidates its group before any parked request wakes, because the cache's
  listener is registered on the notifier before any request parks; the same
  listener starts the reload of the Group's targets at once, and once they are
  read, the loads of the answer pieces of every Release they offer), and reports
  and ``last_seen`` go through one
  :class:`~konorkestra.center.agentapi.writer.ReportWriter` (group commit).
* A node's ``last_seen`` is set at most every :data:`TOUCH_EVERY` seconds by its
  long-polls (a report sets it anyway).
* The services the agent API needs running (:attr:`AgentApi.services`) are the
  notifier, then the writer if there is one.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from konorkestra.center.agentapi.blobs import BlobAuthorizer
from konorkestra.center.agentapi.cache import EntryCache, LatestCache
from konorkestra.center.agentapi.entries import TargetsMemo, group_targets, release_entry
from konorkestra.center.agentapi.freshness import FreshnessSigner
from konorkestra.center.agentapi.notify import ReleaseNotifier
from konorkestra.center.agentapi.reportrows import touch
from konorkestra.center.agentapi.writer import ReportWriter
from konorkestra.center.releases.desired import GroupTargets
from konorkestra.model.types import ReleaseId
from konorkestra.trust import DEFAULT_FRESHNESS_TTL, SigningKey

TOUCH_EVERY = 30.0
"""Seconds between two ``last_seen`` updates caused by long-polls of one node."""


def offered(targets: list[GroupTargets]) -> set[ReleaseId]:
    """Every Release ``targets`` tell some node to hold (what a fan-out will send)."""
    rows = (row for t in targets for row in (t.default, *t.overrides.values()))
    return {row.release_id for row in rows if row is not None}


@dataclass
class AgentApi:
    """State shared by the agent routes: the notifier, the timestamp keys, caches."""

    notifier: ReleaseNotifier
    timestamp_signers: Sequence[SigningKey]
    freshness_ttl: dt.timedelta = DEFAULT_FRESHNESS_TTL
    max_wait: float = 55.0
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    writer: ReportWriter | None = None
    freshness_reuse: float | None = None
    """Seconds a node's freshness statement is re-sent (default: a tenth of the TTL, <= 30)."""
    blobs: BlobAuthorizer = field(default_factory=BlobAuthorizer, repr=False)
    fresh: FreshnessSigner = field(init=False, repr=False)
    _touched: dict[str, float] = field(default_factory=dict, repr=False)
    report_listeners: list[Callable[[frozenset[str]], None]] = field(default_factory=list)
    """``listener(groups)`` after a report naming those Groups was stored (the rollout runner)."""
    _latest: LatestCache[GroupTargets] | None = field(default=None, repr=False)
    _entries: EntryCache | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.freshness_reuse is None:
            self.freshness_reuse = min(30.0, self.freshness_ttl.total_seconds() / 10)
        self.fresh = FreshnessSigner(
            self.timestamp_signers, self.freshness_ttl, self.freshness_reuse or 0, self.clock
        )

    @property
    def services(self) -> list[ReleaseNotifier | ReportWriter]:
        """What must run while the app serves: the notifier, then the writer (if any)."""
        return [self.notifier, *([self.writer] if self.writer is not None else [])]

    def caches(self, engine: Engine) -> tuple[LatestCache[GroupTargets], EntryCache]:
        """The per-Group desired-state and answer-piece caches over ``engine``."""
        if self._latest is None or self._entries is None or self._engine is not engine:
            self._engine = engine
            entries = EntryCache(lambda rid: run_in_threadpool(release_entry, engine, rid))
            memo = TargetsMemo()
            latest = LatestCache(
                lambda groups: run_in_threadpool(group_targets, engine, groups, memo),
                prefetched=lambda targets: entries.prefetch(offered(targets)),
            )
            self.notifier.listeners.append(latest.invalidate)
            if self._latest is not None:
                self.notifier.listeners.remove(self._latest.invalidate)
            self.notifier.settled = lambda group: getattr(latest.peek(group), "rolled", False)
            self._latest, self._entries = latest, entries
        return self._latest, self._entries

    def reported(self, groups: frozenset[str] | set[str] | list[str]) -> None:
        """A report naming ``groups`` was stored: tell the listeners."""
        named = frozenset(groups)
        for listener in self.report_listeners:
            listener(named)

    def seen(self, node_id: str) -> None:
        """``node_id`` was just seen (its report sets ``last_seen``)."""
        self._touched[node_id] = time.monotonic()

    async def touch(self, engine: Engine, node_id: str) -> None:
        """Set ``last_seen`` of ``node_id`` unless done in the last :data:`TOUCH_EVERY` s."""
        last = self._touched.get(node_id)
        if last is None or time.monotonic() - last > TOUCH_EVERY:
            self._touched[node_id] = time.monotonic()
            if self.writer is not None:
                self.writer.touch(node_id)  # with the next batch of reports
            else:
                await run_in_threadpool(touch, engine, node_id)
