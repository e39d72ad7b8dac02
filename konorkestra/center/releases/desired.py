"""A node's desired state: the Release of each Group in its scope it should hold (pure logic).

Example::

    >>> from konorkestra.center.releases.desired import LatestRow, behind, parse_have
    >>> have = parse_have("checkout:3,payments:1")
    >>> rows = [LatestRow("checkout", 4, "checkout-4-0123456789abcdef", "sha256:" + "a" * 64),
    ...         LatestRow("payments", 1, "payments-1-0123456789abcdef", "sha256:" + "b" * 64)]
    >>> [r.release_id for r in behind(rows, have)]
    ['checkout-4-0123456789abcdef']

Invariants:

* Only groups in the node's scope are ever considered; the caller passes rows
  for those groups only and :func:`behind` re-checks nothing else.
* A group is offered when the Center's latest sequence is above what the node
  says it has (absent = 0). A node that claims more than the Center holds is
  not "behind"; the signed freshness statement tells it so.
* ``have`` is untrusted input: at most :data:`MAX_HAVE` entries of
  ``<group>:<sequence>``, group names are DNS labels, sequences are integers
  in ``0..2**53-1``; anything else is a :class:`ValueError` naming the entry.
* Desired state is per node (rule D1 of :mod:`konorkestra.rollout.engine`):
  :class:`GroupTargets` holds what the Group's current rollout tells its
  targeted nodes and what every other node keeps; a Group without a rollout
  row offers its latest Release to every node (:func:`targets_of`). A node told
  "nothing" (a rollback being signed, a first Release that has not reached it)
  is offered nothing and its freshness statement does not list the Group.
* No I/O and no clock: the route reads the store and the time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from konorkestra.model.types import Digest, GroupName, NodeId, ReleaseId, Sequence
from konorkestra.rollout import Phase, RolloutState, desired_of
from konorkestra.trust import LatestRelease

MAX_HAVE = 1000
MAX_WAIT = 55.0
_GROUP = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_MAX_SEQ = 2**53 - 1


@dataclass(frozen=True)
class LatestRow:
    """A group's latest Release as the store holds it."""

    group: GroupName
    sequence: Sequence
    release_id: ReleaseId
    digest: Digest
    """The statement digest (what high-water marks and freshness statements name)."""


def parse_have(text: str | None) -> dict[str, int]:
    """``"g1:3,g2:7"`` -> ``{g1: 3, g2: 7}``; empty or ``None`` -> ``{}``."""
    out: dict[str, int] = {}
    if not text:
        return out
    entries = text.split(",")
    if len(entries) > MAX_HAVE:
        raise ValueError(f"'have' lists {len(entries)} groups; at most {MAX_HAVE}")
    for entry in entries:
        group, sep, seq = entry.partition(":")
        if not sep or not _GROUP.match(group) or not seq.isdigit() or len(seq) > 16:
            raise ValueError(f"'have' entry {entry[:80]!r} is not <group>:<sequence>")
        value = int(seq)
        if value > _MAX_SEQ:
            raise ValueError(f"'have' entry {entry[:80]!r}: sequence out of range")
        if group in out:
            raise ValueError(f"'have' names group {group!r} twice")
        out[group] = value
    return out


def parse_wait(text: str | None, *, cap: float = MAX_WAIT) -> float:
    """The ``wait`` query parameter in seconds, clamped to ``0..cap``; absent means 0."""
    if text is None or text == "":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise ValueError("'wait' must be a number of seconds") from None
    if value != value:  # NaN
        raise ValueError("'wait' must be a number of seconds")
    return max(0.0, min(cap, value))


def behind(latest: Iterable[LatestRow], have: Mapping[str, int]) -> list[LatestRow]:
    """The rows whose sequence is above the node's, sorted by group."""
    return sorted(
        (row for row in latest if row.sequence > have.get(row.group, 0)),
        key=lambda r: r.group,
    )


def freshness_entries(latest: Iterable[LatestRow]) -> list[LatestRelease]:
    """What the freshness statement lists: one entry per group with a Release."""
    return [LatestRelease(r.group, r.sequence, r.digest) for r in latest]


@dataclass(frozen=True)
class GroupTargets:
    """What each node of one Group should hold: ``default``, unless ``overrides`` names it."""

    group: GroupName
    default: LatestRow | None
    overrides: Mapping[NodeId, LatestRow | None]
    rolled: bool = False
    """From a rollout row: a new Release changes nothing here until the runner decides."""

    def row_for(self, node: str) -> LatestRow | None:
        """The Release ``node`` should hold (None: nothing to offer it)."""
        if node in self.overrides:
            return self.overrides[NodeId(node)]
        return self.default


def targets_of(
    group: GroupName,
    latest: LatestRow | None,
    state: RolloutState | None,
    rows: Mapping[ReleaseId, LatestRow],
) -> GroupTargets:
    """D1 as lookup table: ``rows`` must hold every Release ``state`` names."""
    if state is None:
        return GroupTargets(group, latest, {})
    default: ReleaseId | None
    if state.phase is Phase.COMPLETED:
        default = state.release.id
    else:
        default = None if state.stable is None else state.stable.id
    overrides = {
        node: None if wanted is None else rows[wanted]
        for node, wanted in desired_of(state, state.targeted).items()
    }
    return GroupTargets(group, None if default is None else rows[default], overrides, rolled=True)
