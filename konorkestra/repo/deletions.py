"""Destructive commits: which Group deletions a commit may make, decided purely.

Example::

    from konorkestra.repo.deletions import AllowDelete, deletion_diagnostics

    allowed = AllowDelete.from_message(commit_message)     # Konorkestra-Allow-Delete trailers
    diagnostics = deletion_diagnostics(
        previous={"web", "db"}, current={"db"}, nodes={"web": 3}, allowed=allowed
    )
    # -> [error group-deleted: "Group 'web' is removed ... 3 enrolled nodes ..."]

The Center calls this with the Groups of its last accepted commit and the
number of enrolled (non-revoked) nodes per removed Group; ``konorctl validate
--against REV`` calls it offline with ``nodes=None`` (unknown).

The opt-in is a commit-message trailer (:mod:`konorkestra.repo.trailers`)::

    Konorkestra-Allow-Delete: web, web-eu
    Konorkestra-Allow-Delete: db

Names are comma separated and trailers may repeat (the union counts). ``*``
allows every deletion, including removing every Group.

Rules (each has a test in ``tests/repo/test_deletions.py``):

* D1. A removed Group is one in ``previous`` and not in ``current``. Every
  removed Group gets exactly one ``group-deleted`` diagnostic, an error when
  the deletion is refused and a warning (saying what happens to its nodes)
  when it is allowed. Nothing else is reported: a commit that removes no
  Group gets no diagnostic from here.
* D2. The deletion of a Group with enrolled nodes (count > 0) is refused unless
  ``allowed`` names the Group or is ``*``. The error names the Group, its
  node count, and the trailer that would allow it.
* D3. A Group whose node count is known to be 0 may be deleted without opt-in.
* D4. When node counts are unknown (``nodes is None``, offline), an un-allowed
  deletion is reported with severity ``unknown`` (an error where the commit
  message can carry the trailer, a warning where it cannot yet): offline
  checks never accept what the Center might refuse.
* D5. A commit that leaves no Group while ``previous`` had some is refused
  with one extra ``every-group-deleted`` error unless ``allowed`` is ``*``;
  naming each Group is not enough (an emptied repo is almost always a
  mistake: a wrong directory, a mistyped ``apiVersion``).
* D6. An allowed deletion never changes a node: the warning says that its
  nodes keep serving their last Release until an operator revokes them.
* Pure: sets and counts in, diagnostics out; no Git, no store, no clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from konorkestra.repo.diagnostics import Diagnostic, Severity
from konorkestra.repo.trailers import trailer_values

TRAILER = "Konorkestra-Allow-Delete"
EVERYTHING = "*"


@dataclass(frozen=True)
class AllowDelete:
    """The Group deletions a commit (or an operator) opted into."""

    groups: frozenset[str] = frozenset()
    every: bool = False
    """``*``: every deletion, including removing every Group."""

    @classmethod
    def of(cls, values: Iterable[str]) -> AllowDelete:
        """From trailer values or ``--allow-delete`` options: comma separated names or ``*``."""
        names = {part.strip() for value in values for part in value.split(",")}
        names.discard("")
        return cls(frozenset(names - {EVERYTHING}), EVERYTHING in names)

    @classmethod
    def from_message(cls, message: str) -> AllowDelete:
        """From the ``Konorkestra-Allow-Delete`` trailers of a commit message."""
        return cls.of(trailer_values(message, TRAILER))

    def __or__(self, other: AllowDelete) -> AllowDelete:
        return AllowDelete(self.groups | other.groups, self.every or other.every)

    def covers(self, group: str) -> bool:
        return self.every or group in self.groups

    def describe(self) -> str:
        if self.every:
            return EVERYTHING
        return ", ".join(sorted(self.groups)) or "nothing"


def _nodes_text(count: int) -> str:
    return f"{count} enrolled node{'s' if count != 1 else ''}"


def _refused_hint(group: str) -> str:
    return (
        f"to delete it anyway, add the trailer '{TRAILER}: {group}' to the commit message "
        "(its nodes keep their last Release); otherwise restore the Group, or first "
        "revoke its nodes (konorctl nodes revoke NODE)"
    )


def _group_diagnostic(
    group: str, count: int | None, allowed: AllowDelete, unknown: Severity
) -> Diagnostic:
    where: dict[str, Any] = {"kind": "Group", "name": group}
    if allowed.covers(group) or count == 0:  # D2, D3
        why = f"allowed by {TRAILER}" if allowed.covers(group) else "no enrolled node"
        nodes = "" if count is None else f"; {_nodes_text(count)}"
        return Diagnostic(
            "group-deleted",
            f"Group {group!r} is deleted ({why}{nodes}); it is no longer released, and "
            "nodes subscribed to it keep serving its last Release",  # D6
            Severity.WARNING,
            hint="revoke or re-enroll the nodes that served it (konorctl nodes)",
            **where,
        )
    if count is None:  # D4
        message = (
            f"Group {group!r} is removed by this commit; the Center refuses that "
            "while nodes are enrolled in it"
        )
        return Diagnostic("group-deleted", message, unknown, hint=_refused_hint(group), **where)
    message = (
        f"Group {group!r} is removed by this commit, but {_nodes_text(count)} "
        "subscribe to it; the commit is refused"
    )
    return Diagnostic.error("group-deleted", message, hint=_refused_hint(group), **where)


def deletion_diagnostics(
    previous: Collection[str],
    current: Collection[str],
    nodes: Mapping[str, int] | None,
    allowed: AllowDelete,
    *,
    unknown: Severity = Severity.ERROR,
) -> list[Diagnostic]:
    """Diagnostics for the Groups removed between ``previous`` and ``current`` (D1–D6).

    ``nodes`` maps a removed Group to its number of enrolled, non-revoked
    nodes (absent means 0), or is ``None`` when nobody can know (offline).
    """
    removed = sorted(set(previous) - set(current))
    out = [
        _group_diagnostic(g, None if nodes is None else nodes.get(g, 0), allowed, unknown)
        for g in removed
    ]
    if removed and not current and not allowed.every:  # D5
        counts = (
            ""
            if nodes is None
            else " (" + ", ".join(f"{g}: {_nodes_text(nodes.get(g, 0))}" for g in removed) + ")"
        )
        out.insert(
            0,
            Diagnostic.error(
                "every-group-deleted",
                f"this commit removes every Group ({len(removed)}){counts}; "
                "nothing would be left to release",
                hint=(
                    f"if you mean it, add the trailer '{TRAILER}: {EVERYTHING}' to the commit "
                    "message; otherwise check the apiVersion and kind of your definitions"
                ),
            ),
        )
    return out
