"""Which Groups an agent request touches, and whether the calling node may (pure logic).

Example::

    >>> from konorkestra.center.agentapi.reports import parse_report
    >>> out_of_scope({"web"}, ["web", "db", "db"])
    ['db']
    >>> report = parse_report({"applied": [
    ...     {"group": "web", "release": "db-3-0123456789abcdef", "sequence": 3}]})
    >>> report_groups(report)
    ['db', 'web']
    >>> mismatches(report)
    ["applied[0]: release 'db-3-0123456789abcdef' is not a release of group 'web'"]

The routes (:mod:`konorkestra.center.agentapi.routes`) call these before they read
or store anything, and turn a non-empty answer into ``403 group_out_of_scope``
(:func:`~konorkestra.center.agentapi.routes.require_group_in_scope`) or ``400
release_mismatch`` (:func:`~konorkestra.center.agentapi.routes.require_consistent`).

Rules:

* S1 A request touches every Group it names: the ``have`` entries of a
  desired-state poll; in a report every ``group`` of ``applied``, ``refused``
  and ``events``, every key of ``stale``, and the Group of every release id
  (a release id is ``<group>-<sequence>-<16 hex>``, so it names its Group).
* S2 A node may touch only the Groups of its own scope. One Group outside it
  refuses the whole request, listing every such Group; nothing is kept in part.
* S3 A release named under a Group is a release id of that Group: the id's
  Group equals the item's ``group``, the id's sequence equals the item's
  ``sequence`` when one is given, an ``applied`` item's ``digest`` (the
  statement digest) starts with the id's 16 hex, and an item that names a
  release names its Group too. Otherwise the stored rows and the audit log would
  credit one Group with another Group's Release.
* No I/O, no clock: a node's scope and the parsed request in, lists out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator

from konorkestra.center.agentapi.reports import Applied, Event, Refused, Report
from konorkestra.model.releaseid import parse_release_id


def out_of_scope(scope: Collection[str], groups: Iterable[str]) -> list[str]:
    """The Groups of ``groups`` outside ``scope``, sorted, each once (S2)."""
    allowed = frozenset(scope)
    return sorted({g for g in groups if g not in allowed})


def _items(report: Report) -> Iterator[tuple[str, Applied | Refused | Event]]:
    for i, applied in enumerate(report.applied):
        yield f"applied[{i}]", applied
    for i, refused in enumerate(report.refused):
        yield f"refused[{i}]", refused
    for i, event in enumerate(report.events):
        yield f"events[{i}]", event


def report_groups(report: Report) -> list[str]:
    """Every Group ``report`` touches (S1), sorted, each once."""
    groups: set[str] = set(report.stale)
    for _where, item in _items(report):
        if item.group is not None:
            groups.add(item.group)
        parts = None if item.release is None else parse_release_id(item.release)
        if parts is not None:
            groups.add(parts[0])
    return sorted(groups)


def mismatches(report: Report) -> list[str]:
    """Every item of ``report`` naming a release that is not of its Group (S3), as text."""
    out = []
    for where, item in _items(report):
        release, group, sequence, digest = item.release, item.group, item.sequence, item.digest
        if release is None:
            continue
        if group is None:
            out.append(f"{where}: names release {release!r} but no group")
            continue
        parts = parse_release_id(release)
        if parts is None or parts[0] != group:
            out.append(f"{where}: release {release!r} is not a release of group {group!r}")
        elif sequence is not None and sequence != parts[1]:
            out.append(f"{where}: release {release!r} is not sequence {sequence}")
        elif digest is not None and not digest.startswith(f"sha256:{parts[2]}"):
            # only ``applied`` items carry the statement digest
            out.append(f"{where}: digest {digest!r} is not that of {release!r}")
    return out
