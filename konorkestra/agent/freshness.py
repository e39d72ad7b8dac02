"""What the agent knows of the Center's freshness statements, kept across restarts.

Example::

    keeper = FreshnessKeeper(served, data_dir, skew=dt.timedelta(seconds=30), poll_wait=55.0)
    keeper.load(verifier.check_freshness)     # at start: the kept statement, if still good
    keeper.adopt(verifier.check_freshness(answer.freshness))   # after each answer
    if keeper.persist_due():
        keeper.persist(answer.freshness)      # worker thread; then keeper.persisted()
    wait = keeper.poll_wait()                 # how long the next long-poll may be held

The statement itself is verified by :mod:`konorkestra.trust.freshness` and the
:class:`~konorkestra.trust.Verifier`; this module only keeps its consequences.

Invariants:

* Only a verified :class:`~konorkestra.trust.FreshnessStatus` is adopted; a
  stale one still moves ``last_issued`` (the verifier refuses anything older
  next time) but never extends how long served config counts as fresh.
* Served config is fresh until the statement's ``expires`` plus the clock
  skew (``ServedState.fresh_until``).
* The kept statement (``<data>/trust/freshness.bundle``) is written at most
  every :data:`PERSIST_EVERY` seconds, atomically but without fsync: it only
  lets a restart without network count as fresh for a while, and the Center
  hands out a new one with every answer. A kept statement that no longer
  verifies is ignored with a warning, never fatal.
* A long-poll is held at most ``poll_wait`` seconds and never longer than half
  of what is left of the statement (at least one second), so the next
  statement arrives before the current one expires.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path

from konorkestra.agent.served import ServedState, utcnow
from konorkestra.agent.store.fsutil import ensure_dir
from konorkestra.durable import atomic_write
from konorkestra.trust import FreshnessStatus, GroupState, TrustError

log = logging.getLogger("konorkestra.agent.sync")
FRESHNESS_FILE = Path("trust") / "freshness.bundle"
PERSIST_EVERY = 30.0
"""Seconds between two writes of the kept freshness statement (one per answer at most)."""


class FreshnessKeeper:
    """The node's latest verified freshness statement and what follows from it."""

    def __init__(
        self,
        served: ServedState,
        data_dir: Path,
        *,
        skew: dt.timedelta,
        poll_wait: float,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.served, self.data_dir, self.skew = served, data_dir, skew
        self.max_wait, self.clock = poll_wait, clock
        self.last_issued: dt.datetime | None = None
        """``issued_at`` of the newest adopted statement (the verifier's ``last_freshness``)."""
        self.expires: dt.datetime | None = None
        self.persisted_at = -PERSIST_EVERY

    def load(self, check: Callable[[bytes], FreshnessStatus]) -> None:
        """Re-verify the kept statement with ``check`` (restart without network). Loop only."""
        try:
            raw = (self.data_dir / FRESHNESS_FILE).read_bytes()
        except FileNotFoundError:
            return
        try:
            self.adopt(check(raw))
        except TrustError as exc:
            log.warning("persisted freshness statement not accepted: %s", exc)

    def adopt(self, status: FreshnessStatus) -> None:
        """Take a verified freshness status into account. Loop only."""
        self.last_issued = status.statement.issued_at
        self.expires = status.statement.expires_at
        behind = [g for g, s in status.groups.items() if s is GroupState.BEHIND]
        if behind:
            log.info("the Center has news this node does not hold yet: %s", ", ".join(behind))
        if not status.stale:
            self.served.fresh_until(status.statement.expires_at + self.skew)

    def persist_due(self) -> bool:
        """Whether the next good statement should be kept on disk."""
        return time.monotonic() - self.persisted_at >= PERSIST_EVERY

    def persist(self, raw: bytes) -> None:
        """Keep the statement for a restart; atomic, not durable (it is re-obtainable)."""
        ensure_dir(self.data_dir / "trust")
        atomic_write(self.data_dir / FRESHNESS_FILE, raw, 0o644, durable=False)

    def persisted(self) -> None:
        """Record that :meth:`persist` succeeded now. Loop only."""
        self.persisted_at = time.monotonic()

    def poll_wait(self) -> float:
        """Seconds the next long-poll may be held (see the module invariants)."""
        wait = self.max_wait
        if self.expires is not None:
            left = (self.expires - self.clock()).total_seconds()
            wait = min(wait, max(1.0, left / 2))
        return wait
