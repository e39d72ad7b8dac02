"""Push-to-Release latency of the Center on a large config repo.

    .venv/bin/python bench/ingest.py [--files 2000] [--changed 20] [--rounds 5]

Builds a repo of ``--files`` ConfigSet YAML files in Groups of ``--group-size``
ConfigSets (default 10, i.e. 200 Groups for 2,000 files), starts
``konorkestra center`` as a real process on a bare repo, and for each round
changes ``--changed`` files (new versions), commits, pushes with the real
``git`` CLI and measures from the moment ``git push`` returns until the
commit's Releases are visible through the API (``GET /v1/commits/{sha}``, which
the store writes in the same transaction as the Releases). Two set-ups:

* ``hook``: the post-receive hook notifies the Center; watcher and poll off.
* ``watcher``: the Center's ref watcher alone (no hook).

Targets: hook under 300 ms, watcher under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.center_proc import CenterProcess, install_post_receive
from tests.helpers.git import WorkRepo, make_bare


def configset(i: int, version: int) -> str:
    return (
        "apiVersion: konorkestra.io/v1\nkind: ConfigSet\n"
        f"metadata: {{name: svc-{i:04d}, version: {version}}}\n"
        "spec:\n  data:\n"
        f"    service: svc-{i:04d}\n    timeout_ms: {100 + version}\n"
        f"    replicas: {1 + i % 5}\n    flags: {{beta: {str(version % 2 == 0).lower()}}}\n"
        "    upstreams: [a.internal, b.internal]\n"
    )


def seed(work: WorkRepo, files: int, group_size: int) -> None:
    work.write(
        "policies/fast.yaml",
        "apiVersion: konorkestra.io/v1\nkind: Policy\nmetadata: {name: fast}\n"
        "spec: {strategy: all-at-once}\n",
    )
    per = group_size
    for g in range(files // per):
        members = ", ".join(f"svc-{i:04d}" for i in range(g * per, (g + 1) * per))
        work.write(
            f"groups/g{g:04d}.yaml",
            f"apiVersion: konorkestra.io/v1\nkind: Group\nmetadata: {{name: g{g:04d}}}\n"
            f"spec:\n  policy: fast\n  configSets: [{members}]\n",
        )
    for i in range(files):
        work.write(f"configsets/svc-{i:04d}.yaml", configset(i, 1))


def wait_released(center: CenterProcess, sha: str, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        resp = center.request("GET", f"/v1/commits/{sha}")
        if resp.status_code == 200:
            body: dict[str, object] = resp.json()
            if body["status"] != "accepted":
                raise SystemExit(f"commit {sha[:12]} was {body['status']}: {body['diagnostics']}")
            if body["releases"]:
                return body
        if time.monotonic() > deadline:
            raise SystemExit(f"no Release for {sha[:12]} within {timeout}s\n{center.output()}")
        time.sleep(0.01)


def run(
    mode: str, files: int, changed: int, rounds: int, group_size: int, tmp: Path
) -> list[float]:
    bare = make_bare(tmp / f"{mode}.git")
    work = WorkRepo.clone(bare, tmp / f"{mode}-work")
    seed(work, files, group_size)
    args = ("--no-watch", "--poll", "3600") if mode == "hook" else ()
    center = CenterProcess(repo=bare, data=tmp / f"{mode}-data", args=args)
    center.start()
    try:
        if mode == "hook":
            install_post_receive(bare, center)
        work.commit("seed")
        started = time.perf_counter()
        work.push()
        wait_released(center, work.head(), timeout=300)
        print(
            f"[{mode}] initial commit ({files} files, {files // group_size} groups): "
            f"{(time.perf_counter() - started) * 1000:.0f} ms push-to-Release"
        )
        version = 1
        latencies = []
        stride = max(1, files // changed)
        for r in range(rounds):
            version += 1
            for k in range(changed):
                i = (k * stride + r) % files
                work.write(f"configsets/svc-{i:04d}.yaml", configset(i, version))
            sha = work.commit(f"round {r}: {changed} ConfigSets changed")
            work.push()
            pushed = time.perf_counter()
            body = wait_released(center, sha)
            latencies.append((time.perf_counter() - pushed) * 1000)
            n = len(body["releases"])  # type: ignore[arg-type]
            print(f"[{mode}] round {r + 1}: {latencies[-1]:.0f} ms ({n} Releases)")
        return latencies
    finally:
        center.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--changed", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--group-size", type=int, default=10)
    parser.add_argument("--mode", choices=["hook", "watcher", "both"], default="both")
    opts = parser.parse_args()
    targets = {"hook": 300.0, "watcher": 1000.0}
    modes = ["hook", "watcher"] if opts.mode == "both" else [opts.mode]
    with tempfile.TemporaryDirectory(prefix="konorkestra-bench-") as tmp:
        results = {
            m: run(m, opts.files, opts.changed, opts.rounds, opts.group_size, Path(tmp))
            for m in modes
        }
    print()
    for mode, values in results.items():
        verdict = "OK" if statistics.median(values) < targets[mode] else "OVER TARGET"
        print(
            f"{mode:8s} push-to-Release: median {statistics.median(values):.0f} ms, "
            f"max {max(values):.0f} ms over {len(values)} rounds "
            f"(target < {targets[mode]:.0f} ms) {verdict}"
        )


if __name__ == "__main__":
    main()
