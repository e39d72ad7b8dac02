"""What the overview page shows of each Group: Releases, rollout progress, guards, stale nodes.

Example::

    cards = load_overview(engine, now())   # one GroupCard per Group, by name
    cards[0].progress.segments()           # (("acked", 3, "w-30"), ("failed", 1, "w-10"))

Invariants:

1. A card's rollout numbers are the status the API shows
   (:func:`konorkestra.center.rollouts.control.load` and
   :func:`~konorkestra.center.rollouts.status.status_json`): phase, step of
   steps, bake end, guard readings against their thresholds, stale nodes (the
   sum of the waves' ``stale``).
2. The progress bar counts *nodes* of the targeted set (those told to hold the
   new Release) against the whole Group (its enrolled nodes: a canary's first
   wave of one node in ten fills a tenth of the bar), each node read as the guards read it
   (:func:`konorkestra.rollout.guards.exposure`): ``committed`` nodes hold the
   Release, ``failed`` nodes have a process whose latest ack is ``failed``,
   ``acked`` nodes committed with every watching process acked ``applied``
   (a node with no watching process has nothing left to ack). So
   ``acked + failed <= committed <= targeted``.
3. Segment widths are multiples of 5 % (the ``w-N`` classes of ``app.css``,
   no inline styles), cut at cumulative boundaries so they never sum over 100.
4. Every Group of the latest accepted commit, every Group with a Release and
   every Group with a rollout has a card; a Group without a rollout has
   ``phase`` ``none``. The reads are a fixed number of queries plus the status's
   fixed number per Group with a rollout: nothing is read per node.
5. The dashboard keeps one :data:`~konorkestra.center.rollouts.control.FleetCache`
   per store (:func:`fleets_of`): a page re-reads a Group's fleet only after an
   agent report or an audit event was added, and then only what changed: its
   :func:`~konorkestra.center.rollouts.control.fleet_memories` read the new
   report rows alone (a fleet equal to a fresh read).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from konorkestra.center.releases.queries import list_groups
from konorkestra.center.rollouts import store
from konorkestra.center.rollouts.control import (
    FleetCache,
    Loaded,
    fleet_memories,
    load,
    shared,
)
from konorkestra.center.rollouts.status import holding, status_json
from konorkestra.center.store.engine import reader
from konorkestra.rollout.guards import NodeView, exposure

NO_ROLLOUT = "none"
"""The ``data-phase`` of a Group that has no rollout yet."""


def fleets_of(engine: Engine) -> FleetCache:
    """Invariant 5: the dashboard's fleet cache for ``engine``'s store."""
    return shared(engine, "fleets", FleetCache)


def width(part: int, whole: int) -> int:
    """``part`` of ``whole`` in percent, rounded to a multiple of 5 (0 when ``whole`` is 0)."""
    if whole <= 0:
        return 0
    return max(0, min(100, 5 * round(20 * part / whole)))


@dataclass(frozen=True)
class Progress:
    """Invariant 2: one rollout's nodes."""

    targeted: int
    committed: int
    acked: int
    failed: int
    enrolled: int = 0
    """The Group's nodes: the bar's whole (at least ``targeted``), so a canary's first
    wave fills a tenth of the bar, not all of it."""

    @property
    def whole(self) -> int:
        return max(self.enrolled, self.targeted)

    @property
    def waiting(self) -> int:
        """Committed, neither fully acked nor failed yet."""
        return max(0, self.committed - self.acked - self.failed)

    def segments(self) -> tuple[tuple[str, int, str], ...]:
        """``(kind, nodes, width class)`` per bar segment (invariant 3), zero-width left out."""
        out = []
        edge = 0
        total = 0
        for kind, count in (("acked", self.acked), ("committed", self.waiting),
                            ("failed", self.failed)):  # fmt: skip
            total += count
            nxt = width(total, self.whole)
            if nxt > edge:
                out.append((kind, count, f"w-{nxt - edge}"))
            edge = nxt
        return tuple(out)


def progress_of(views: Sequence[NodeView], targeted: int, enrolled: int = 0) -> Progress:
    """Invariant 2 over the guards' view of the targeted nodes."""
    committed = [v for v in views if v.committed_at is not None]
    failed = sum(any(o == "failed" for _, o in v.acks) for v in committed)
    acked = sum(v.missing_acks == 0 and all(o == "applied" for _, o in v.acks) for v in committed)
    return Progress(targeted, len(committed), acked, failed, enrolled)


@dataclass(frozen=True)
class GroupCard:
    """One Group on the overview."""

    name: str
    stable: str | None
    """The Release the Group's nodes fall back to (the completed one once a rollout ends)."""
    in_flight: str | None
    """The Release being rolled out, while its rollout has not ended."""
    latest: str | None
    """The Group's newest Release (it may not have a rollout yet)."""
    status: dict[str, Any] | None
    """The API's status of the Group's latest rollout."""
    progress: Progress | None

    @property
    def phase(self) -> str:
        return NO_ROLLOUT if self.status is None else str(self.status["phase"])

    @property
    def stale(self) -> int:
        return 0 if self.status is None else sum(int(w["stale"]) for w in self.status["waves"])


def card_of(name: str, latest: str | None, loaded: Loaded | None, now: dt.datetime) -> GroupCard:
    """One Group's card from what was read (pure)."""
    if loaded is None:
        return GroupCard(name, None, None, latest, None, None)
    row = loaded.row
    state = row.state
    status = status_json(row, loaded.policy, loaded.fleet, now)
    targeted = holding(row, loaded.fleet)
    views = exposure(loaded.fleet, targeted, state.release.id)
    stable = state.next_stable() if state.terminal else state.stable
    return GroupCard(
        name,
        None if stable is None else stable.id,
        None if state.terminal else state.release.id,
        latest,
        status,
        progress_of(views, len(targeted), len(loaded.fleet.nodes)),
    )


def load_overview(engine: Engine, now: dt.datetime) -> list[GroupCard]:
    """Every Group's card, by name (invariant 4)."""
    groups = {str(g.name): g for g in list_groups(engine)}
    with reader(engine).connect() as conn:
        rollouts = store.current_all(conn)
    cards = []
    for name in sorted({*groups, *rollouts}):
        view = groups.get(name)
        newest = None if view is None or view.latest_release is None else view.latest_release.id
        loaded = (
            load(engine, name, cache=fleets_of(engine), memories=fleet_memories(engine))
            if name in rollouts
            else None
        )
        cards.append(card_of(name, newest, loaded, now))
    return cards
