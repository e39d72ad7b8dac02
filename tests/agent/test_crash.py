"""Crash safety of the agent store: SIGKILL at random points, faults at every step.

After every crash, before any recovery, each group's pointer names its old or
its new release (never a refused or half-built one), that release's blobs and
files verify and its ``release.json`` equals the committed release; after a
restart each group is at that release and never below its high-water mark.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from konorkestra.agent.store import AgentStore, Fs, StoreBrokenError
from konorkestra.model.canonical import digest_of

CHILD = Path(__file__).with_name("store_child.py")
_spec = importlib.util.spec_from_file_location("store_child", CHILD)
assert _spec is not None and _spec.loader is not None
child = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(child)

RUNS = int(os.environ.get("KONORKESTRA_CRASH_RUNS", "200"))
COMMITS_PER_RUN = 3
DEADLINE_S = 20.0


def check_on_disk(data: Path, group: str, allowed: set[int], floor: int) -> int:
    """Raw (pre-recovery) invariants of one group; returns the pointer's sequence."""
    link = data / "current" / group
    if not os.path.lexists(link):
        assert 0 in allowed, f"{group}: pointer missing but a release was committed"
        return 0
    target = os.readlink(link)
    seq = int(target.rsplit("/", 1)[1])
    assert seq in allowed, f"{group}: pointer names {seq}, allowed {sorted(allowed)}"
    assert seq >= floor
    staged, blobs = child.make_release(group, seq)
    for d in [staged.bundle_digest, *blobs]:
        blob = data / "blobs" / "sha256" / d[7:9] / d[7:]
        assert digest_of(blob.read_bytes()) == d, f"{group}@{seq}: blob {d} does not verify"
    release = json.loads((link / "release.json").read_bytes())
    committed_at = release.pop("committed_at")
    assert committed_at.endswith("Z")
    assert release == {
        "group": group,
        "release": f"{group}-{seq}",
        "sequence": seq,
        "digest": staged.release_digest,
        "config": child.expected_config(group, seq),
    }
    for path, content in child.expected_files(group, seq).items():
        assert (link / "files" / path).read_bytes() == content
    hw = _high_water(data).get(group)
    assert hw is None or hw["sequence"] <= seq, f"{group}: high water above the pointer"
    return seq


def _high_water(data: Path) -> dict[str, Any]:
    path = data / "trust" / "high_water.json"
    groups: dict[str, Any] = json.loads(path.read_bytes())["groups"] if path.exists() else {}
    return groups


def check_after_restart(data: Path, on_disk: dict[str, int], hw_floor: dict[str, int]) -> None:
    """Open (recover) and check that the store serves exactly what is on disk."""
    store = AgentStore.open(data, keep=2, log_max_bytes=6000)
    try:
        for group, seq in on_disk.items():
            cur = store.current(group)
            if seq == 0:
                assert cur is None
                continue
            assert cur is not None and cur.sequence == seq
            assert dict(cur.config) == child.expected_config(group, seq)
            mark = store.high_water(group)
            assert mark is not None and mark[0] == seq >= hw_floor.get(group, 0)
            hw_floor[group] = seq
            assert not cur.needs_repair
            assert [r.sequence for r in store.history(group)][:1] == [seq]
    finally:
        store.close()


@dataclass
class Progress:
    steps: int = 0
    began: list[tuple[str, int, bool]] = field(default_factory=list)
    committed: list[tuple[str, int]] = field(default_factory=list)
    buf: bytes = b""

    def feed(self, chunk: bytes) -> None:
        self.steps += chunk.count(b".")
        self.buf += chunk.replace(b".", b"")
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            parts = line.decode().split()
            if parts and parts[0] == "b":
                self.began.append((parts[1], int(parts[2]), parts[3] == "good"))
            elif parts and parts[0] == "c":
                self.committed.append((parts[1], int(parts[2])))


def run_child(data: Path, seed: int, kill_at: int, jitter_us: int) -> tuple[Progress, bool]:
    """Run the child; SIGKILL it once it reported ``kill_at`` steps (plus jitter)."""
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(data), str(COMMITS_PER_RUN), str(seed)],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    progress, killed = Progress(), False
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + DEADLINE_S
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "child made no progress before the deadline"
            if not sel.select(remaining):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            progress.feed(chunk)
            if not killed and progress.steps >= kill_at:
                until = time.perf_counter() + jitter_us / 1e6
                while time.perf_counter() < until:
                    pass
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
    rc = proc.wait(timeout=DEADLINE_S)
    assert killed or rc == 0, f"child failed with exit code {rc}"
    return progress, killed


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_each_group_at_old_or_new(tmp_path: Path) -> None:
    seed = int(os.environ.get("KONORKESTRA_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    data = tmp_path / "data"
    floor = {g: 0 for g in child.GROUPS}
    attempts: dict[str, set[int]] = {g: set() for g in child.GROUPS}
    hw_floor: dict[str, int] = {}
    kills = 0
    started = time.monotonic()
    for run in range(RUNS):
        progress, killed = run_child(
            data, rng.randrange(1 << 30), rng.randint(0, 220), rng.choice([0, 0, 20, 200])
        )
        kills += killed
        for group, seq, good in progress.began:
            if good:
                attempts[group].add(seq)
        for group, seq in progress.committed:
            floor[group] = max(floor[group], seq)
        on_disk = {}
        for group in child.GROUPS:
            allowed = {floor[group]} | {s for s in attempts[group] if s > floor[group]}
            try:
                seq = check_on_disk(data, group, allowed, floor[group])
            except AssertionError as exc:
                raise AssertionError(f"run {run} (seed {seed}): {exc}") from exc
            floor[group] = seq
            attempts[group] = {s for s in attempts[group] if s > seq}
            on_disk[group] = seq
        if rng.random() < 0.5:  # otherwise the next child recovers (and may die doing so)
            check_after_restart(data, on_disk, hw_floor)
    assert kills >= RUNS // 2, f"only {kills} of {RUNS} runs were killed"
    assert sum(floor.values()) > 0, "no release was ever committed"
    check_after_restart(data, {g: floor[g] for g in child.GROUPS}, hw_floor)
    print(f"crash loop: {RUNS} runs, {kills} kills, {time.monotonic() - started:.1f}s, seed {seed}")


# -- injected faults at every step ---------------------------------------------


class FaultFs(Fs):
    """Counts mutating steps once armed; raises ``OSError`` at step ``fail_at``."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.armed = False
        self.ops: list[tuple[str, str]] = []

    def step(self, op: str, path: str | os.PathLike[str]) -> None:
        if not self.armed:
            return
        self.ops.append((op, str(path)))
        if len(self.ops) == self.fail_at:
            raise OSError(5, f"injected fault at step {self.fail_at} ({op} {path})")


def _base(tmp: Path) -> tuple[Path, int]:
    """Two committed releases of ``checkout`` (keep=2) and one of ``search``."""
    base = tmp / "base"
    store = AgentStore.open(base, keep=2)
    for group, seq in (("checkout", 1), ("search", 1), ("checkout", 2)):
        store.commit(child.make_release(group, seq)[0])
    size = store.log.size()
    store.close()
    return base, size + 200  # the next commit crosses it: compaction runs too


def _open(data: Path, fs: Fs | None, log_max: int) -> AgentStore:
    return AgentStore.open(data, keep=2, log_max_bytes=log_max, fs=fs)


def test_fault_at_every_commit_step_recovers_to_old_or_new(tmp_path: Path) -> None:
    base, log_max = _base(tmp_path)
    probe_dir = tmp_path / "probe"
    shutil.copytree(base, probe_dir, symlinks=True)
    probe = FaultFs()
    store = _open(probe_dir, probe, log_max)
    probe.armed = True
    store.commit(child.make_release("checkout", 3)[0])
    store.close()
    ops = probe.ops
    kinds = {op for op, _ in ops}
    assert {"write", "fsync", "fdatasync", "rename", "symlink", "fsync_dir", "unlink"} <= kinds
    assert any(p.endswith("snapshot.json") for _, p in ops), "compaction was not exercised"
    flip = next(i for i, (op, p) in enumerate(ops, 1) if op == "rename" and "/current/" in p)
    for k in range(1, len(ops) + 1):
        data = tmp_path / f"k{k}"
        shutil.copytree(base, data, symlinks=True)
        fs = FaultFs(k)
        store = _open(data, fs, log_max)
        fs.armed = True
        with pytest.raises(StoreBrokenError):
            store.commit(child.make_release("checkout", 3)[0])
        with pytest.raises(StoreBrokenError):  # rule 13: no retry on a broken store
            store.commit(child.make_release("checkout", 3)[0])
        store.close()
        want = 3 if k > flip else 2
        try:
            assert check_on_disk(data, "checkout", {want}, 2) == want
            check_after_restart(data, {"checkout": want, "search": 1}, {})
        except AssertionError as exc:
            raise AssertionError(f"fault at step {k} {ops[k - 1]}: {exc}") from exc
        store = _open(data, None, log_max)
        assert store.commit(child.make_release("checkout", 4)[0]).sequence == 4
        store.close()
        shutil.rmtree(data)


def test_fault_at_every_recovery_step_recovers_on_the_next_open(tmp_path: Path) -> None:
    base, log_max = _base(tmp_path)
    crashed = tmp_path / "crashed"
    shutil.copytree(base, crashed, symlinks=True)
    # Leave a commit half done: pointer flipped, COMMITTED never written.
    probe = FaultFs()
    store = _open(crashed, probe, 1 << 20)
    probe.armed = True
    store.commit(child.make_release("checkout", 3)[0])
    store.close()
    flip = next(i for i, (op, p) in enumerate(probe.ops, 1) if op == "rename" and "/current/" in p)
    committed_at = next(  # the COMMITTED record's write
        i for i, (op, p) in enumerate(probe.ops, 1) if i > flip and op == "write" and "/log/" in p
    )
    shutil.rmtree(crashed)
    shutil.copytree(base, crashed, symlinks=True)
    fs = FaultFs(committed_at)
    store = _open(crashed, fs, 1 << 20)
    fs.armed = True
    with pytest.raises(StoreBrokenError):
        store.commit(child.make_release("checkout", 3)[0])
    store.close()
    probe = FaultFs()
    probe.armed = True
    probe_dir = tmp_path / "probe"
    shutil.copytree(crashed, probe_dir, symlinks=True)
    _open(probe_dir, probe, log_max).close()
    assert probe.ops, "recovery had nothing to do"
    for k in range(1, len(probe.ops) + 1):
        data = tmp_path / f"r{k}"
        shutil.copytree(crashed, data, symlinks=True)
        fs = FaultFs(k)
        fs.armed = True
        with pytest.raises(StoreBrokenError):
            _open(data, fs, log_max)
        check_on_disk(data, "checkout", {3}, 3)
        check_after_restart(data, {"checkout": 3, "search": 1}, {})
        shutil.rmtree(data)
