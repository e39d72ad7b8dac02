"""Content-addressed blob storage: ``<data>/blobs/sha256/<ab>/<hex>``.

Example::

    >>> import tempfile, pathlib
    >>> from konorkestra.model.canonical import digest_of
    >>> cas = BlobStore(pathlib.Path(tempfile.mkdtemp()))
    >>> d = digest_of(b"hello")
    >>> cas.put_many({d: b"hello"})
    >>> cas.read_verified(d)
    b'hello'

Invariants:

* A blob file's name is its digest; only bytes that hash to that digest are
  ever renamed into place (checked before the write).
* Blob files are written with the atomic recipe (temp file in the same fan-out
  directory, fsync, rename, fsync the directory) and are read-only (0444).
  :meth:`BlobStore.stage` and :meth:`BlobStore.publish` split the recipe at
  the rename so a commit can share each fsync round trip with other steps
  (``fsutil.Batch``); the order per blob is unchanged.
* Reads verify: :meth:`read_verified` returns ``None`` for a missing or
  corrupt blob rather than bad bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from konorkestra.agent.store.errors import BlobIntegrityError
from konorkestra.agent.store.fsutil import REAL_FS, Batch, Fs, ensure_dir
from konorkestra.durable import tmp_name
from konorkestra.model.canonical import digest_of, is_digest
from konorkestra.model.types import Digest


class BlobStore:
    """The CAS under ``root`` (``<data>/blobs``)."""

    def __init__(self, root: Path, fs: Fs = REAL_FS) -> None:
        self.root = root / "sha256"
        self.fs = fs

    def path(self, digest: Digest) -> Path:
        """Where the blob with ``digest`` lives."""
        if not is_digest(digest):
            raise ValueError(f"not a digest: {digest!r}")
        hexd = digest.removeprefix("sha256:")
        return self.root / hexd[:2] / hexd

    def read_verified(self, digest: Digest) -> bytes | None:
        """The blob's bytes if present and matching ``digest``, else ``None``."""
        try:
            data = self.path(digest).read_bytes()
        except OSError:
            return None
        return data if digest_of(data) == digest else None

    def holds(self, digest: Digest) -> bool:
        """True when a verified copy of ``digest`` is on disk."""
        return self.read_verified(digest) is not None

    def put_many(self, blobs: Mapping[Digest, bytes]) -> None:
        """Durably store every blob; one fsync per file, one per directory.

        Raises :class:`BlobIntegrityError` (before writing anything) when a
        blob does not match its digest.
        """
        with Batch(self.fs) as written:
            moves = self.stage(blobs, written)
            written.sync()
        with Batch(self.fs) as placed:
            self.publish(moves, placed)
            placed.sync()

    def stage(self, blobs: Mapping[Digest, bytes], batch: Batch) -> dict[Path, Path]:
        """Write each blob to a temporary file; ``batch`` fsyncs them.

        Returns ``{temp: target}`` for :meth:`publish`, which may run only
        after ``batch.sync()``. Checks every digest before writing anything.
        """
        for digest, data in blobs.items():
            if digest_of(data) != digest:
                raise BlobIntegrityError(f"blob {digest}: content does not match digest")
        moves: dict[Path, Path] = {}
        for digest, data in blobs.items():
            target = self.path(digest)
            ensure_dir(target.parent, self.fs, batch)
            tmp = tmp_name(target.parent, target.name[:16])
            batch.write_new(tmp, data, 0o444)
            moves[tmp] = target
        return moves

    def publish(self, moves: Mapping[Path, Path], batch: Batch) -> None:
        """Rename staged (and synced) temporaries into place; ``batch`` fsyncs their dirs."""
        for tmp, target in moves.items():
            self.fs.rename(tmp, target)
            batch.sync_dir(target.parent)

    def remove(self, digests: Iterable[Digest]) -> None:
        """Delete blobs (garbage collection); missing ones are ignored.

        Not fsynced: a deleted blob that reappears after a power loss is
        unreferenced and goes at the next collection.
        """
        for digest in digests:
            p = self.path(digest)
            if p.exists():
                self.fs.unlink(p)

    def all_digests(self) -> set[Digest]:
        """Digests of every blob file on disk (unverified)."""
        out: set[Digest] = set()
        if not self.root.is_dir():
            return out
        for sub in self.root.iterdir():
            for f in sub.iterdir():
                if not f.name.startswith("."):
                    out.add(Digest("sha256:" + f.name))
        return out

    def temp_files(self) -> list[Path]:
        """Leftover temporary files from interrupted writes."""
        if not self.root.is_dir():
            return []
        return [f for sub in self.root.iterdir() for f in sub.glob(".tmp-*")]
