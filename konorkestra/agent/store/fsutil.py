"""The store's file-system seam (:class:`Fs`), fsync batches, locks and trees.

Example::

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> ensure_dir(d / "log" / "segments")
    >>> sorted(p.name for p in d.iterdir())
    ['log']

Atomic replacement of one file is :func:`konorkestra.durable.atomic_write`
(temp file, fsync, rename, fsync of the directory); :class:`Fs` extends its
:class:`~konorkestra.durable.FileOps` seam with the other calls the store makes.

Invariants:

1. Every call that changes the disk (open-for-write, fchmod, write, fsync,
   fdatasync, rename, symlink, unlink, rmdir, mkdir, truncate) goes through one
   :class:`Fs` object, so a test can make the k-th such call raise ``OSError``.
2. A directory entry is durable only after its directory is fsynced; callers
   that create, rename or unlink call ``Fs.fsync_dir``.
3. Errors from fsync are never retried: the caller must treat them as fatal.
4. Independent fsyncs may run concurrently (:class:`Batch`); each batch
   completes, or raises, before the caller's next step, so the ordering
   between steps is unchanged. A :class:`Batch` separates the writes (done at once, in order)
   from their fsyncs (done together by :meth:`Batch.sync`), so one device
   round trip makes several independent steps durable.
"""

from __future__ import annotations

import fcntl
import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from konorkestra.durable import FileOps


class Fs(FileOps):
    """The real file system: one method per mutating system call.

    Subclass and override :meth:`step` to inject a fault; every mutating
    method calls ``step(name, path)`` before it acts. ``open_new``, ``fchmod``,
    ``write``, ``fsync``, ``fsync_dir`` and ``rename`` come from
    :class:`~konorkestra.durable.FileOps`.
    """

    def open_append(self, path: str | Path) -> int:
        """Open (creating if needed) ``path`` for appending."""
        self.step("open", path)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def fdatasync(self, fd: int, path: str | Path = "") -> None:
        """``fdatasync(2)`` a file descriptor (data plus the size)."""
        self.step("fdatasync", path)
        os.fdatasync(fd)

    def symlink(self, target: str, path: str | Path) -> None:
        """Create a symbolic link ``path`` -> ``target``."""
        self.step("symlink", path)
        os.symlink(target, path)

    def unlink(self, path: str | Path) -> None:
        """Remove a file or symlink."""
        self.step("unlink", path)
        os.unlink(path)

    def rmdir(self, path: str | Path) -> None:
        """Remove an empty directory."""
        self.step("rmdir", path)
        os.rmdir(path)

    def mkdir(self, path: str | Path, mode: int = 0o755) -> None:
        """Create one directory."""
        self.step("mkdir", path)
        os.mkdir(path, mode)

    def truncate(self, path: str | Path, size: int) -> None:
        """Cut the file at ``path`` to ``size`` bytes and fsync it."""
        self.step("truncate", path)
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)


REAL_FS = Fs()


_POOL: ThreadPoolExecutor | None = None


def _parallel(calls: Sequence[Callable[[], None]]) -> None:
    """Run independent fsyncs concurrently (the device batches them); re-raise the first error.

    fsync releases the GIL, so three files take about one fsync's time, not three.
    """
    global _POOL
    if len(calls) <= 1:
        for call in calls:
            call()
        return
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fsync")
    futures = [_POOL.submit(call) for call in calls]
    errors = [f.exception() for f in futures]
    for err in errors:
        if err is not None:
            raise err


class Batch:
    """Writes now, their fsyncs later and all at once (invariant 4).

    Example::

        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with Batch() as b:
        ...     b.write_new(d / "a", b"1", 0o444)
        ...     b.write_new(d / "b", b"2", 0o444)
        ...     b.sync_dir(d)
        ...     b.sync()
        >>> sorted(p.name for p in d.iterdir())
        ['a', 'b']

    Nothing added is durable before :meth:`sync` returns; leaving the ``with``
    block closes the files it opened (after ``sync`` or on an error).
    """

    def __init__(self, fs: Fs = REAL_FS) -> None:
        self.fs = fs
        self._calls: list[Callable[[], None]] = []
        self._dirs: dict[Path, None] = {}
        self._fds: list[int] = []

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()

    def write_new(self, path: Path, data: bytes, mode: int) -> None:
        """Create ``path`` (must not exist) with ``data``; fsync it at :meth:`sync`."""
        fd = self.fs.open_new(path, mode)
        self._fds.append(fd)
        self.fs.write(fd, data, path)
        self._calls.append(functools.partial(self.fs.fsync, fd, path))

    def sync_dir(self, path: Path) -> None:
        """Fsync directory ``path`` at :meth:`sync` (once, however often it is added)."""
        self._dirs[path] = None

    def add(self, call: Callable[[], None]) -> None:
        """Run ``call`` (an fsync-like step) at :meth:`sync`."""
        self._calls.append(call)

    def sync(self) -> None:
        """Run every added fsync concurrently; re-raise the first error."""
        calls = self._calls + [functools.partial(self.fs.fsync_dir, d) for d in self._dirs]
        self._calls, self._dirs = [], {}
        _parallel(calls)


def lock_dir(path: Path) -> int:
    """Create ``path`` if needed and take ``path/lock`` exclusively (``flock``).

    Returns the descriptor holding the lock (close it to release); raises
    ``BlockingIOError`` when another open file description holds it.
    """
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def ensure_dir(path: Path, fs: Fs = REAL_FS, batch: Batch | None = None) -> None:
    """Create ``path`` and missing parents, fsyncing each parent that gained an entry.

    With ``batch`` those fsyncs are added to it instead of run now.
    """
    if path.is_dir():
        return
    ensure_dir(path.parent, fs, batch)
    try:
        fs.mkdir(path)
    except FileExistsError:
        return
    if batch is None:
        fs.fsync_dir(path.parent)
    else:
        batch.sync_dir(path.parent)


def remove_tree(path: Path, fs: Fs = REAL_FS) -> None:
    """Remove the directory tree at ``path`` (no symlinks are followed).

    Not atomic: rename the tree to a temporary name first when an interrupted
    removal must not leave a half-deleted tree under its real name.
    """
    for entry in sorted(path.iterdir(), reverse=True):
        if entry.is_dir() and not entry.is_symlink():
            remove_tree(entry, fs)
        else:
            fs.unlink(entry)
    fs.rmdir(path)
