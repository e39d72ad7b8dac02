"""Per-group high-water marks: ``<data>/trust/high_water.json``.

Example::

    >>> import tempfile, pathlib
    >>> hw = HighWater(pathlib.Path(tempfile.mkdtemp()) / "high_water.json")
    >>> hw.raise_to({"g": (3, "sha256:" + "0" * 64)})
    >>> HighWater(hw.path).get("g")
    (3, 'sha256:0000000000000000000000000000000000000000000000000000000000000000')

Invariants:

* The file is replaced atomically (temp, rename); a reader sees the old marks
  or the new ones.
* The file mirrors marks the transaction log already holds durably (each
  COMMITTED record is fdatasynced with its flip; recovery raises the marks
  from the log and the pointers, see docs/adr/0005-one-round-trip-per-step.md).
  A commit therefore writes it with ``durable=False``; recovery writes it
  durably. A missing or unreadable file reads as no marks.
* Marks only move up: :meth:`HighWater.raise_to` ignores a mark at or below
  the stored one.
* The trust verifier reads the same marks (``(sequence, digest)`` per group).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from konorkestra.agent.store.fsutil import REAL_FS, Fs
from konorkestra.durable import atomic_write
from konorkestra.model.types import Digest, GroupName, Sequence

Mark = tuple[Sequence, Digest]


class HighWater:
    """``group -> (sequence, digest)``, mirrored to ``high_water.json``."""

    def __init__(self, path: Path, fs: Fs = REAL_FS) -> None:
        self.path = path
        self.fs = fs
        self.marks: dict[GroupName, Mark] = {}
        try:
            raw = json.loads(path.read_bytes())
            marks = {
                GroupName(group): (Sequence(int(m["sequence"])), Digest(str(m["digest"])))
                for group, m in raw["groups"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            marks = {}  # rebuilt from the log by recovery
        self.marks.update(marks)

    def get(self, group: str) -> Mark | None:
        """The group's mark, or ``None`` when nothing was ever committed."""
        return self.marks.get(GroupName(group))

    def raise_to(self, updates: Mapping[str, tuple[int, str]], *, durable: bool = True) -> None:
        """Raise marks and write the file once; lower or equal marks are ignored.

        ``durable=False`` skips the fsyncs (the commit path: the log holds the marks).
        """
        changed = False
        for group, (seq, digest) in updates.items():
            cur = self.marks.get(GroupName(group))
            if cur is None or seq > cur[0]:
                self.marks[GroupName(group)] = (Sequence(seq), Digest(digest))
                changed = True
        if changed:
            body = {
                "version": 1,
                "groups": {g: {"sequence": s, "digest": d} for g, (s, d) in self.marks.items()},
            }
            data = json.dumps(body, sort_keys=True, indent=1).encode()
            atomic_write(self.path, data, 0o644, self.fs, durable=durable)
