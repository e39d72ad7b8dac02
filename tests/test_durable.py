"""The one durable write: old or new file never a prefix, exact mode, every fsync, no debris."""

from __future__ import annotations

import contextlib
import doctest
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import konorkestra.durable
from konorkestra.durable import TMP_PREFIX, FileOps, atomic_write


class Recording(FileOps):
    """Records each call; raises ``OSError`` at the call named ``fail``."""

    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[str] = []
        self.fail = fail

    def step(self, op: str, path: str | Path) -> None:
        self.calls.append(op)
        if op == self.fail:
            raise OSError(5, f"injected {op} failure")


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def test_writes_then_fsyncs_file_renames_then_fsyncs_directory(tmp_path: Path) -> None:
    ops = Recording()
    with umask(0o022):
        atomic_write(tmp_path / "f", b"new", 0o640, ops)
    assert ops.calls == ["open", "write", "fsync", "rename", "fsync_dir"]
    assert (tmp_path / "f").read_bytes() == b"new"


def test_a_narrowing_umask_is_undone_before_the_first_byte(tmp_path: Path) -> None:
    ops = Recording()
    with umask(0o077):
        atomic_write(tmp_path / "f", b"new", 0o644, ops)
    assert ops.calls == ["open", "fchmod", "write", "fsync", "rename", "fsync_dir"]
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("fail", ["open", "fchmod", "write", "fsync", "rename"])
def test_a_failed_step_leaves_the_old_file_and_no_temp_file(tmp_path: Path, fail: str) -> None:
    (tmp_path / "f").write_bytes(b"old")
    with pytest.raises(OSError, match="injected"), umask(0o077):
        atomic_write(tmp_path / "f", b"new", 0o644, Recording(fail))
    assert (tmp_path / "f").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_a_failed_directory_fsync_is_raised_not_retried(tmp_path: Path) -> None:
    ops = Recording("fsync_dir")
    with pytest.raises(OSError, match="injected"):
        atomic_write(tmp_path / "f", b"new", 0o644, ops)
    assert ops.calls.count("fsync_dir") == 1


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o444])
def test_mode_is_exact_whatever_the_umask(tmp_path: Path, mode: int) -> None:
    for mask in (0o000, 0o022, 0o077):
        with umask(mask):
            atomic_write(tmp_path / f"f{mask}", b"x", mode)
        assert (tmp_path / f"f{mask}").stat().st_mode & 0o777 == mode


def test_not_durable_skips_both_fsyncs(tmp_path: Path) -> None:
    ops = Recording()
    atomic_write(tmp_path / "f", b"x", 0o644, ops, durable=False)
    assert "fsync" not in ops.calls and "fsync_dir" not in ops.calls
    assert (tmp_path / "f").read_bytes() == b"x"


def test_sync_dir_false_leaves_the_directory_fsync_to_the_caller(tmp_path: Path) -> None:
    ops = Recording()
    with umask(0o022):
        atomic_write(tmp_path / "f", b"x", 0o644, ops, sync_dir=False)
    assert ops.calls == ["open", "write", "fsync", "rename"]


def test_temp_files_carry_the_prefix_recovery_sweeps(tmp_path: Path) -> None:
    seen: list[str] = []

    class Spy(FileOps):
        def step(self, op: str, path: str | Path) -> None:
            if op == "open":
                seen.append(Path(path).name)

    atomic_write(tmp_path / "f", b"x", 0o644, Spy())
    assert len(seen) == 1 and seen[0].startswith(TMP_PREFIX + "f-")


def test_docstring_example_runs() -> None:
    result = doctest.testmod(konorkestra.durable)
    assert result.failed == 0 and result.attempted > 0
