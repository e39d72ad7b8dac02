"""Durable file-system primitives and the ``Fs`` fault-injection seam.

Example::

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write(d / "state.json", b"{}", 0o644)
    >>> (d / "state.json").read_bytes()
    b'{}'

Invariants:

1. Every call that changes the disk (open-for-write, write, fsync, fdatasync,
   rename, symlink, unlink, rmdir, mkdir, truncate) goes through one :class:`Fs`
   object, so a test can make the k-th such call raise ``OSError``.
2. :func:`atomic_write` leaves either the old file or the complete new one under
   ``path``, never a prefix: temp file in the same directory (``O_EXCL``), write,
   fsync, ``rename(2)``, fsync the directory. On failure the temp file is removed.
3. A directory entry is durable only after its directory is fsynced; callers
   that create, rename or unlink call :func:`fsync_dir` (or ``Fs.fsync_dir``).
4. Errors from fsync are never retried: the caller must treat them as fatal.
5. Independent fsyncs may run concurrently (:class:`Batch`); each batch
   completes, or raises, before the caller's next step, so the ordering
   between steps is unchanged. A :class:`Batch` separates the writes (done at once, in order)
   from their fsyncs (done together by :meth:`Batch.sync`), so one device
   round trip makes several independent steps durable.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TMP_PREFIX = ".tmp-"
"""Every temporary name the store creates starts with this; recovery sweeps them."""


class Fs:
    """The real file system: one method per mutating system call.

    Subclass and override :meth:`step` to inject a fault; every mutating
    method calls ``step(name, path)`` before it acts.
    """

    def step(self, op: str, path: str | Path) -> None:
        """Hook called before every mutating call (no-op in production)."""

    def open_new(self, path: str | Path, mode: int) -> int:
        """Create ``path`` exclusively for writing and return the descriptor."""
        self.step("open", path)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)

    def open_append(self, path: str | Path) -> int:
        """Open (creating if needed) ``path`` for appending."""
        self.step("open", path)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

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

    def fdatasync(self, fd: int, path: str | Path = "") -> None:
        """``fdatasync(2)`` a file descriptor (data plus the size)."""
        self.step("fdatasync", path)
        os.fdatasync(fd)

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


def tmp_name(directory: Path, stem: str) -> Path:
    """A fresh temporary path inside ``directory`` (same file system as the target)."""
    return directory / f"{TMP_PREFIX}{stem}-{secrets.token_hex(6)}"


def fsync_dir(path: str | Path, fs: Fs = REAL_FS) -> None:
    """Make the entries of directory ``path`` durable."""
    fs.fsync_dir(path)


def write_new(path: Path, data: bytes, mode: int, fs: Fs = REAL_FS) -> None:
    """Create ``path`` (must not exist), write ``data`` and fsync the file.

    The directory entry is not yet durable: fsync the parent afterwards.
    """
    fd = fs.open_new(path, mode)
    try:
        fs.write(fd, data, path)
        fs.fsync(fd, path)
    finally:
        os.close(fd)


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
    """Writes now, their fsyncs later and all at once (invariant 5).

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


def atomic_write(
    path: str | Path,
    data: bytes,
    mode: int = 0o644,
    fs: Fs = REAL_FS,
    *,
    sync_dir: bool = True,
    durable: bool = True,
) -> None:
    """Replace ``path`` with ``data`` atomically and durably (rule 2).

    With ``sync_dir=False`` the caller promises to fsync the directory itself
    (to batch several renames into one directory fsync). ``durable=False``
    skips both fsyncs: still atomic for readers and after a process crash,
    but a power loss may leave the old file (or, on some file systems, an
    empty one) -- only for files that can be rebuilt from durable state.
    """
    target = Path(path)
    tmp = tmp_name(target.parent, target.name)
    try:
        if durable:
            write_new(tmp, data, mode, fs)
        else:
            fd = fs.open_new(tmp, mode)
            try:
                fs.write(fd, data, tmp)
            finally:
                os.close(fd)
        fs.rename(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir and durable:
        fs.fsync_dir(target.parent)


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
