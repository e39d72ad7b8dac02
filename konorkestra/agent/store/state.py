"""The store's in-memory state, rebuilt from the snapshot plus the log.

Example::

    >>> s = State()
    >>> rec = {"group": "g", "sequence": 1, "release_id": "g-1", "digest": "sha256:" + "a" * 64,
    ...        "bundle": "sha256:" + "b" * 64,
    ...        "configsets": [], "files": [], "committed_at": "2026-01-01T00:00:00Z",
    ...        "layout": {}}
    >>> s.apply({"type": STAGED, "release": rec})
    >>> s.apply({"type": COMMITTED, "group": "g", "sequence": 1, "digest": rec["digest"]})
    >>> s.group("g").current
    1

Invariants (the record types and what each one means):

* ``staged`` – a validated release is being written (it becomes durable in
  the same fsync round trip as its blobs and directory, all before the flip);
  it becomes the group's ``pending`` release.
* ``committed`` – follows the pointer flip (and is synced together with it);
  the pending release becomes current and joins the kept history. The
  latest ``committed`` of a group is its high-water mark.
* ``aborted`` – recovery rolled the pending release back (logs written before
  ADR 0005 also hold one per refused release); forget it.
* ``adopted`` – a complete release directory found on disk joins the history
  (recovery after the log lost its tail); never changes ``current``.
* ``forgotten`` – garbage collection dropped these sequences from the history.
* Applying records is deterministic: the same records give the same state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from konorkestra.agent.store.records import ReleaseRecord

STAGED, COMMITTED, ABORTED, ADOPTED, FORGOTTEN = (
    "staged",
    "committed",
    "aborted",
    "adopted",
    "forgotten",
)


@dataclass
class GroupState:
    """One group: kept releases, the current one, and at most one pending."""

    releases: dict[int, ReleaseRecord] = field(default_factory=dict)
    current: int | None = None
    pending: ReleaseRecord | None = None

    def current_record(self) -> ReleaseRecord | None:
        """The record the pointer names, if any."""
        return None if self.current is None else self.releases.get(self.current)


class State:
    """All groups; mutated only through :meth:`apply`."""

    def __init__(self) -> None:
        self.groups: dict[str, GroupState] = {}

    def group(self, name: str) -> GroupState:
        """The group's state (created empty on first use)."""
        return self.groups.setdefault(name, GroupState())

    def apply(self, body: dict[str, Any]) -> None:
        """Apply one log record body."""
        kind = body["type"]
        if kind in (STAGED, ADOPTED):
            rec = ReleaseRecord.from_json(body["release"])
            g = self.group(rec.group)
            if kind == STAGED:
                g.pending = rec
            else:
                g.releases[rec.sequence] = rec
            return
        g = self.group(body["group"])
        if kind == COMMITTED:
            p = g.pending
            if p is not None and p.sequence == body["sequence"] and p.digest == body["digest"]:
                g.releases[p.sequence] = p
                g.current = p.sequence
                g.pending = None
        elif kind == ABORTED:
            if g.pending is not None and g.pending.sequence == body["sequence"]:
                g.pending = None
        elif kind == FORGOTTEN:
            for seq in body["sequences"]:
                if seq != g.current:
                    g.releases.pop(seq, None)
        else:
            raise ValueError(f"unknown log record type {kind!r}")

    def to_json(self) -> dict[str, Any]:
        """Snapshot form; only taken when no release is pending."""
        return {
            name: {
                "current": g.current,
                "releases": [r.to_json() for _, r in sorted(g.releases.items())],
                "pending": None if g.pending is None else g.pending.to_json(),
            }
            for name, g in sorted(self.groups.items())
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> State:
        """Inverse of :meth:`to_json`."""
        s = cls()
        for name, raw in obj.items():
            g = s.group(name)
            g.current = raw["current"]
            for r in raw["releases"]:
                rec = ReleaseRecord.from_json(r)
                g.releases[rec.sequence] = rec
            if raw.get("pending"):
                g.pending = ReleaseRecord.from_json(raw["pending"])
        return s

    def referenced_blobs(self) -> set[str]:
        """Every blob digest a kept or pending release needs."""
        out: set[str] = set()
        for g in self.groups.values():
            recs = list(g.releases.values()) + ([g.pending] if g.pending else [])
            for r in recs:
                out.update(r.blob_digests())
        return out
