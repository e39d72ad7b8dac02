"""Benchmark: ``konorctl audit export`` of 100,000 events (peak RSS, time), then ``verify``.

Usage::

    .venv/bin/python bench/audit.py                  # 100,000 events, 3 runs
    .venv/bin/python bench/audit.py --events 20000 --runs 1

All real (issue 15): a ``konorkestra center`` process over its SQLite store, seeded
with ``--events`` audit events *before* it starts (``append_many`` in batches of
5,000 into ``<data>/center.db``, after a first start created the store and keys and
ingested the example repo), then per run the real ``konorctl audit export -o FILE``
and ``konorctl audit verify FILE --trust-root root.json`` as subprocesses. Peak RSS
is each subprocess's own ``ru_maxrss`` (``os.wait4`` on its pid: not the Center's,
not this process's), time is wall clock. The target is RSS < 100 MB for the export.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from konorkestra.center.store import open_store
from konorkestra.center.store.audit import append_many
from konorkestra.center.store.engine import sqlite_url
from konorkestra.demo import ConfigRepo, Stack, examples_dir
from konorkestra.demo.procs import tool

BATCH = 5000
TARGET_MB = 100


def seed(db: Path, count: int) -> float:
    """Append ``count`` node-apply-like events in batches; seconds taken."""
    engine = open_store(sqlite_url(str(db)))
    start = time.monotonic()
    try:
        for lo in range(0, count, BATCH):
            batch = [
                (f"node:node-{i % 1000:04d}", "node.applied",
                 {"group": "checkout", "release": f"checkout-{i // 1000 + 1}-{i:016x}",
                  "node": f"node-{i % 1000:04d}", "outcome": "committed", "n": i})
                for i in range(lo, min(lo + BATCH, count))
            ]  # fmt: skip
            with engine.begin() as conn:
                append_many(conn, batch)
    finally:
        engine.dispose()
    return time.monotonic() - start


# A minimal launcher (python -S): forks the command and reports its wait4 ru_maxrss. Linux
# keeps a process's peak RSS across fork and exec, so a child forked straight from this
# bench would report the bench's own ~60 MB; forked from the launcher, the floor is the
# launcher's few MB (printed once as "launcher floor").
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stdout.write("\\nMAXRSS_KB %d\\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run(argv: list[str], env: dict[str, str]) -> tuple[int, float, float, str]:
    """``(exit code, seconds, peak RSS MB, output tail)`` of one command, via the launcher."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-S", "-c", LAUNCHER, *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    took = time.monotonic() - start
    text, _, rss = proc.stdout.rstrip().rpartition("MAXRSS_KB ")
    return proc.returncode, took, int(rss) / 1024, text.strip()[-300:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        root = Path(tmp)
        repo = ConfigRepo.create(root, seed=examples_dir() / "config-repo")
        repo.push()
        with Stack(root) as stack:
            center = stack.center(repo.bare)
            center.wait_commit(repo.head())
            center.stop()
            took = seed(center.data / "center.db", args.events)
            print(f"seeded {args.events} audit events in {took:.1f} s")
            center.start()
            root_json = root / "root.json"
            root_json.write_bytes(center.http.get("/v1/trust/root").content)
            env = {**os.environ, **center.konorctl_env(), "NO_COLOR": "1"}
            konorctl = tool("konorctl")
            print(f"launcher floor (peak RSS of `true`): {run(['true'], env)[2]:.1f} MB")
            worst = 0.0
            for n in range(1, args.runs + 1):
                load = " ".join(f"{x:.2f}" for x in os.getloadavg())
                out = root / f"audit-{n}.jsonl"
                code, secs, rss, tail = run([*konorctl, "audit", "export", "-o", str(out)], env)
                if code != 0:
                    print(f"export failed ({code}): {tail}", file=sys.stderr)
                    return 1
                events = sum(1 for _ in out.open("rb")) - 2
                size = out.stat().st_size / 1e6
                print(f"run {n} (load {load}): export {events} events, {size:.1f} MB file, "
                      f"{secs:.2f} s, peak RSS {rss:.1f} MB")  # fmt: skip
                code, vsecs, vrss, tail = run(
                    [*konorctl, "audit", "verify", str(out), "--trust-root", str(root_json)], env
                )
                print(f"run {n}: verify exit {code}, {vsecs:.2f} s, peak RSS {vrss:.1f} MB: "
                      f"{tail.splitlines()[-1] if tail else ''}")  # fmt: skip
                if code != 0:
                    return 1
                worst = max(worst, rss)
                out.unlink()
    mine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    verdict = "under" if worst < TARGET_MB else "OVER"
    print(f"export peak RSS max {worst:.1f} MB: {verdict} the {TARGET_MB} MB target "
          f"(this bench process: {mine:.1f} MB, not counted)")  # fmt: skip
    return 0 if worst < TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
