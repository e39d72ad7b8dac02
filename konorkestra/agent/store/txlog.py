"""The append-only transaction log and its snapshot.

Example::

    >>> import tempfile, pathlib
    >>> log = TxLog(pathlib.Path(tempfile.mkdtemp()))
    >>> log.recover(first_segment=1, next_lsn=1)
    []
    >>> log.append({"group": "g", "type": "staged"})
    >>> TxLog(log.dir).recover(first_segment=1, next_lsn=1)
    [{'group': 'g', 'type': 'staged'}]

Invariants:

1. A segment ``<log>/<n>.log`` is a sequence of records
   ``magic | length | CRC32(lsn‖body) | lsn | body`` (big-endian ``4s I I Q``),
   ``body`` UTF-8 JSON of at most :data:`MAX_BODY` bytes.
2. Log sequence numbers (lsn) are contiguous across segments; the snapshot
   stores the lsn the next segment starts with.
3. :meth:`TxLog.append` returns only after ``fdatasync``: a returned append is
   durable. A ``sync=False`` append is durable once :meth:`TxLog.datasync`
   (the commit path runs it in a batch with other fsyncs) or a later synced
   append returns; garbage-collection records are never synced on their own.
4. :meth:`TxLog.recover` keeps the longest valid prefix: at the first bad magic,
   length, CRC, lsn or JSON it truncates the segment there (torn tail) and
   deletes any later segment.
5. Compaction writes the snapshot atomically *before* starting the next
   segment and deleting older ones, so a crash at any point loses nothing.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

from konorkestra.agent.store.fsutil import REAL_FS, Fs
from konorkestra.durable import atomic_write

MAGIC = b"KLR1"
HEADER = struct.Struct(">4sIIQ")
MAX_BODY = 4 * 1024 * 1024
SNAPSHOT = "snapshot.json"


def encode(lsn: int, body: dict[str, Any]) -> bytes:
    """One framed record."""
    payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    if len(payload) > MAX_BODY:
        raise ValueError(f"log record of {len(payload)} bytes exceeds {MAX_BODY}")
    crc = zlib.crc32(struct.pack(">Q", lsn) + payload)
    return HEADER.pack(MAGIC, len(payload), crc, lsn) + payload


def scan(data: bytes, next_lsn: int) -> tuple[list[dict[str, Any]], int, int]:
    """Decode the valid prefix of a segment.

    Returns ``(bodies, valid_length, next_lsn)``.
    """
    bodies: list[dict[str, Any]] = []
    pos = 0
    while pos + HEADER.size <= len(data):
        magic, length, crc, lsn = HEADER.unpack_from(data, pos)
        end = pos + HEADER.size + length
        if magic != MAGIC or length > MAX_BODY or end > len(data) or lsn != next_lsn:
            break
        payload = data[pos + HEADER.size : end]
        if zlib.crc32(struct.pack(">Q", lsn) + payload) != crc:
            break
        try:
            body = json.loads(payload)
        except ValueError:
            break
        if not isinstance(body, dict):
            break
        bodies.append(body)
        pos, next_lsn = end, next_lsn + 1
    return bodies, pos, next_lsn


class TxLog:
    """Segments under ``dir``; one active segment open for appending."""

    def __init__(self, directory: Path, fs: Fs = REAL_FS) -> None:
        self.dir = directory
        self.fs = fs
        self.segment = 0
        self.next_lsn = 1
        self._fd: int | None = None
        self._size = 0

    def segments(self) -> list[int]:
        """Segment numbers present on disk, ascending."""
        out = []
        for p in self.dir.glob("*.log"):
            if p.stem.isdigit():
                out.append(int(p.stem))
        return sorted(out)

    def path(self, segment: int) -> Path:
        """File of one segment."""
        return self.dir / f"{segment}.log"

    def recover(self, first_segment: int, next_lsn: int) -> list[dict[str, Any]]:
        """Replay from ``first_segment`` (rule 4) and open the last segment for append."""
        self.close()
        bodies: list[dict[str, Any]] = []
        segs = self.segments()
        stale = [s for s in segs if s < first_segment]
        live = [s for s in segs if s >= first_segment]
        active = first_segment
        for i, seg in enumerate(live):
            data = self.path(seg).read_bytes()
            got, valid, next_lsn = scan(data, next_lsn)
            bodies.extend(got)
            active = seg
            if valid < len(data):
                self.fs.truncate(self.path(seg), valid)
                stale.extend(live[i + 1 :])
                break
        for seg in stale:
            self.fs.unlink(self.path(seg))
        self.segment, self.next_lsn = active, next_lsn
        self._open_active()
        if stale:
            self.fs.fsync_dir(self.dir)
        return bodies

    def _open_active(self) -> None:
        path = self.path(self.segment)
        created = not path.exists()
        self._fd = self.fs.open_append(path)
        if created:
            self.fs.fsync_dir(self.dir)
        self._size = os.fstat(self._fd).st_size

    def append(self, body: dict[str, Any], *, sync: bool = True) -> None:
        """Append one record and ``fdatasync`` it (rule 3).

        ``sync=False`` skips the ``fdatasync`` for records whose loss is
        harmless; the next synced append makes them durable too.
        """
        if self._fd is None:
            raise RuntimeError("log is not open")
        record = encode(self.next_lsn, body)
        path = self.path(self.segment)
        self.fs.write(self._fd, record, path)
        if sync:
            self.fs.fdatasync(self._fd, path)
        self.next_lsn += 1
        self._size += len(record)

    def datasync(self) -> None:
        """``fdatasync`` the active segment: every record appended so far is durable."""
        if self._fd is None:
            raise RuntimeError("log is not open")
        self.fs.fdatasync(self._fd, self.path(self.segment))

    def size(self) -> int:
        """Bytes in the active segment."""
        return self._size

    def compact(self, state: dict[str, Any]) -> None:
        """Snapshot ``state`` and continue in a fresh segment (rule 5)."""
        new = self.segment + 1
        snap = {"version": 1, "segment": new, "next_lsn": self.next_lsn, "state": state}
        data = json.dumps(snap, sort_keys=True, indent=1).encode()
        atomic_write(self.dir / SNAPSHOT, data, 0o644, self.fs)
        old = self.segments()
        self.close()
        self.segment = new
        self._open_active()
        for seg in old:
            if seg < new:
                self.fs.unlink(self.path(seg))
        self.fs.fsync_dir(self.dir)

    def load_snapshot(self) -> tuple[int, int, dict[str, Any]]:
        """``(first_segment, next_lsn, state)`` from the snapshot, or the empty start."""
        path = self.dir / SNAPSHOT
        if not path.exists():
            return 1, 1, {}
        snap = json.loads(path.read_bytes())
        return int(snap["segment"]), int(snap["next_lsn"]), dict(snap["state"])

    def close(self) -> None:
        """Close the active segment."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
