"""Durable file writes: the one atomic write-fsync-rename helper of Konorkestra.

Example::

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write(d / "ca.key", b"secret", 0o600)
    >>> (d / "ca.key").read_bytes(), oct((d / "ca.key").stat().st_mode & 0o777)
    (b'secret', '0o600')

The agent store, the agent's credentials, ``konorctl`` settings, key files and
the Center's private files all write through :func:`atomic_write`. Its system
calls go through a :class:`FileOps` object so a test can fail the k-th one
(``konorkestra.agent.store.fsutil.Fs`` extends it for the store).

Invariants:

1. :func:`atomic_write` leaves either the old file or the complete new one
   under ``path``, never a prefix: a new temp file in the same directory
   (``O_EXCL``, name starting with :data:`TMP_PREFIX`), write, fsync,
   ``rename(2)``, fsync the directory. On failure the temp file is removed.
2. The file gets exactly ``mode``: created with it (so the umask can only
   narrow it, never widen it), then ``fchmod``-ed before any byte is written if
   the umask did narrow it. A private file is never readable by others, not
   even for an instant.
3. A directory entry is durable only after its directory is fsynced; callers
   that batch several renames pass ``sync_dir=False`` and call
   :func:`fsync_dir` themselves.
4. Errors from fsync are never retried: the caller must treat them as fatal.
5. This module imports nothing from Konorkestra: the agent, the Center and the
   CLIs may all use it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

TMP_PREFIX = ".tmp-"
"""Every temporary name starts with this; the agent store's recovery sweeps them."""


class FileOps:
    """The system calls of a durable write; subclass and override :meth:`step` to fail one.

    Every method calls ``step(name, path)`` before it acts.
    """

    def step(self, op: str, path: str | Path) -> None:
        """Hook called before every mutating call (no-op in production)."""

    def open_new(self, path: str | Path, mode: int) -> int:
        """Create ``path`` exclusively for writing and return the descriptor."""
        self.step("open", path)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)

    def fchmod(self, fd: int, mode: int, path: str | Path = "") -> None:
        """Give the open file exactly ``mode`` (whatever the umask did)."""
        self.step("fchmod", path)
        os.fchmod(fd, mode)

    def write(self, fd: int, data: bytes, path: str | Path = "") -> None:
        """Write all of ``data`` to ``fd`` (loops over short writes)."""
        self.step("write", path)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def fsync(self, fd: int, path: str | Path = "") -> None:
        """``fsync(2)`` a file descriptor."""
        self.step("fsync", path)
        os.fsync(fd)

    def fsync_dir(self, path: str | Path) -> None:
        """Make the entries of directory ``path`` durable."""
        self.step("fsync_dir", path)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rename(self, src: str | Path, dst: str | Path) -> None:
        """Atomically replace ``dst`` by ``src`` (``rename(2)``)."""
        self.step("rename", dst)
        os.replace(src, dst)


REAL_OPS = FileOps()


def tmp_name(directory: Path, stem: str) -> Path:
    """A fresh temporary path inside ``directory`` (same file system as the target)."""
    return directory / f"{TMP_PREFIX}{stem}-{secrets.token_hex(6)}"


def fsync_dir(path: str | Path, ops: FileOps = REAL_OPS) -> None:
    """Make the entries of directory ``path`` durable."""
    ops.fsync_dir(path)


def write_new(path: Path, data: bytes, mode: int, ops: FileOps = REAL_OPS) -> None:
    """Create ``path`` (must not exist), write ``data`` and fsync the file.

    The directory entry is not yet durable: fsync the parent afterwards.
    """
    fd = ops.open_new(path, mode)
    try:
        ops.write(fd, data, path)
        ops.fsync(fd, path)
    finally:
        os.close(fd)


def atomic_write(
    path: str | Path,
    data: bytes,
    mode: int = 0o644,
    ops: FileOps = REAL_OPS,
    *,
    sync_dir: bool = True,
    durable: bool = True,
) -> None:
    """Replace ``path`` with ``data`` atomically and durably, with exactly ``mode``.

    With ``sync_dir=False`` the caller promises to fsync the directory itself
    (to batch several renames into one directory fsync). ``durable=False``
    skips both fsyncs: still atomic for readers and after a process crash,
    but a power loss may leave the old file (or, on some file systems, an
    empty one) -- only for files that can be rebuilt from durable state.
    """
    target = Path(path)
    tmp = tmp_name(target.parent, target.name)
    try:
        fd = ops.open_new(tmp, mode)
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) != mode:  # the umask narrowed it
                ops.fchmod(fd, mode, tmp)
            ops.write(fd, data, tmp)
            if durable:
                ops.fsync(fd, tmp)
        finally:
            os.close(fd)
        ops.rename(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir and durable:
        ops.fsync_dir(target.parent)
