"""Per-group high-water marks: ``<data>/trust/high_water.json``.

Example::

    >>> import tempfile, pathlib
    >>> hw = HighWater(pathlib.Path(tempfile.mkdtemp()) / "high_water.json")
    >>> hw.raise_to({"g": (3, "sha256:" + "0" * 64)})
    >>> HighWater(hw.path).get("g")
    (3, 'sha256:0000000000000000000000000000000000000000000000000000000000000000')

Invariants:

* The file is replaced atomically (temp, fsync, rename, fsync dir); a reader
  sees the old marks or the new ones.
* Marks only move up: :meth:`HighWater.raise_to` ignores a mark at or below
  the stored one.
* The trust verifier reads the same marks (``(sequence, digest)`` per group).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from konorkestra.agent.store.fsutil import REAL_FS, Fs, atomic_write
from konorkestra.model.types import Digest, GroupName, Sequence

Mark = tuple[Sequence, Digest]


class HighWater:
    """Durable ``group -> (sequence, digest)`` map."""

    def __init__(self, path: Path, fs: Fs = REAL_FS) -> None:
        self.path = path
        self.fs = fs
        self.marks: dict[GroupName, Mark] = {}
        if path.exists():
            raw = json.loads(path.read_bytes())
            for group, m in raw.get("groups", {}).items():
                self.marks[GroupName(group)] = (Sequence(int(m["sequence"])), Digest(m["digest"]))

    def get(self, group: str) -> Mark | None:
        """The group's mark, or ``None`` when nothing was ever committed."""
        return self.marks.get(GroupName(group))

    def raise_to(self, updates: Mapping[str, tuple[int, str]]) -> None:
        """Raise marks and persist them once; lower or equal marks are ignored."""
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
            atomic_write(self.path, data, 0o644, self.fs)
