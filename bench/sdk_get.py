"""Benchmark ``get`` in the three SDKs, side by side: through the socket and from the snapshot.

Usage::

    .venv/bin/python bench/sdk_get.py [--requests 20000] [--no-build] [--json]

Starts the reference server (``python -m konorkestra.testing.fakeagent --socket S
--state tests/vectors/get.json``: the real UDS server over an in-memory state) and
measures, one SDK after the other so they never compete for CPUs:

* **socket get**: sequential ``get`` round trips on one connection (p50/p99 in µs).
  Python: the raw line client of ``bench/uds.py``; Go: ``go run ./cmd/getbench``
  (the request and the SDK's decoding); Java: ``GetLatencyBench`` (the SDK's
  ``AgentSession``). The server is the same Python process for all three, so the
  numbers compare the clients plus a constant server cost.
* **snapshot get**: ``get_config`` / ``GetConfig`` / ``getConfig`` after the first
  call, served from the client's in-process snapshot (ns per call).

A missing toolchain (``go``; ``java``/``mvn``) leaves its row marked skipped (exit 1
under ``KONORKESTRA_REQUIRE_ALL=1``). Unless ``--no-build``, the Java examples are
compiled first (``mvn -q process-test-classes``, repository in ``.cache/m2``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import konorkestra.sdk as sdk
from konorkestra.testing.lineclient import LineClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from uds import _pct  # noqa: E402  (bench/uds.py: the same percentile rule)

GROUP = "checkout"
STATE = ROOT / "tests" / "vectors" / "get.json"
GO_SDK, JAVA_SDK, CACHE = ROOT / "sdks" / "go", ROOT / "sdks" / "java", ROOT / ".cache"


@dataclass
class Row:
    sdk: str
    socket_n: int = 0
    socket_p50_us: float | None = None
    socket_p99_us: float | None = None
    snapshot_ns: float | None = None
    note: str = ""


def python_row(sock: Path, requests: int) -> Row:
    """``bench/uds.py``'s two measurements, against this server."""
    request = {"id": 1, "op": "get", "group": GROUP}
    with LineClient(sock) as client:
        for _ in range(max(2_000, requests // 10)):
            client.call(request)
        samples = []
        for _ in range(requests):
            t0 = time.perf_counter_ns()
            reply = client.call(request)
            samples.append(time.perf_counter_ns() - t0)
    assert reply["ok"] is True, reply
    samples.sort()
    with sdk.connect(sock, name="bench-python") as c:
        c.get_config(GROUP)
        n, runs = 1_000_000, []
        for _ in range(5):
            t0 = time.perf_counter_ns()
            for _ in range(n):
                c.get_config(GROUP)
            runs.append((time.perf_counter_ns() - t0) / n)
    return Row(
        "python",
        requests,
        _pct(samples, 0.50),
        _pct(samples, 0.99),
        statistics.median(runs),
        "raw LineClient; snapshot: median of 5 x 1M",
    )


def _go() -> str | None:
    found = shutil.which("go")
    if found is None and os.access("/usr/local/go/bin/go", os.X_OK):
        found = "/usr/local/go/bin/go"
    return found


def go_row(sock: Path, requests: int) -> Row:
    go = _go()
    if go is None:
        return Row("go", note="skipped: go not found")
    env = {
        **os.environ,
        "GOCACHE": str(CACHE / "go-build"),
        "GOMODCACHE": str(CACHE / "go-mod"),
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-mod=readonly",
    }
    argv = [
        go,
        "run",
        "./cmd/getbench",
        "-socket",
        str(sock),
        "-group",
        GROUP,
        "-n",
        str(requests),
        "-json",
    ]
    out = subprocess.run(
        argv, cwd=GO_SDK, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"go getbench exited {out.returncode}:\n{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    sock_get, snap = r["socket_get"], r["snapshot_get"]
    return Row(
        "go",
        sock_get["n"],
        sock_get["p50_us"],
        sock_get["p99_us"],
        snap["ns_per_op"],
        f"cmd/getbench; snapshot {snap['n']:,} calls, with cfg.Int "
        f"{snap['with_int_ns_per_op']:.1f} ns",
    )


def java_row(sock: Path, requests: int, build: bool) -> Row:
    java, mvn = shutil.which("java"), shutil.which("mvn")
    if java is None or (build and mvn is None):
        return Row("java", note="skipped: java/mvn not found")
    target = JAVA_SDK / "target"
    if build:
        assert mvn is not None
        argv = [
            mvn,
            "-B",
            "-q",
            "-Dstyle.color=never",
            f"-Dmaven.repo.local={CACHE / 'm2'}",
            "process-test-classes",
        ]
        out = subprocess.run(
            argv, cwd=JAVA_SDK, capture_output=True, text=True, timeout=600, check=False
        )
        if out.returncode != 0:
            raise SystemExit(f"mvn exited {out.returncode}:\n{out.stdout}{out.stderr}")
    deps = (target / "runtime-classpath.txt").read_text().strip()
    cp = os.pathsep.join([str(target / "classes"), str(target / "test-classes"), deps])
    argv = [
        java,
        "-cp",
        cp,
        "io.konorkestra.examples.GetLatencyBench",
        str(sock),
        GROUP,
        str(requests),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise SystemExit(f"GetLatencyBench exited {out.returncode}:\n{out.stdout}{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return Row(
        "java",
        requests,
        r["socket_get_p50_us"],
        r["socket_get_p99_us"],
        r["snapshot_get_ns_per_op"],
        "GetLatencyBench (AgentSession); snapshot 50M calls",
    )


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[Row]) -> str:
    head = ("SDK", "socket get p50 (µs)", "socket get p99 (µs)", "snapshot get (ns/call)", "notes")
    body = [
        (r.sdk, _cell(r.socket_p50_us), _cell(r.socket_p99_us), _cell(r.snapshot_ns), r.note)
        for r in rows
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=20_000, help="socket round trips per SDK")
    parser.add_argument("--no-build", action="store_true", help="use sdks/java/target as it is")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="konork-sdkget-"))
    sock = work / "agent.sock"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "konorkestra.testing.fakeagent",
            "--socket",
            str(sock),
            "--state",
            str(STATE),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("ready"):
            raise SystemExit(f"the reference server did not start (got {line!r})")
        rows = [
            python_row(sock, args.requests),
            go_row(sock, args.requests),
            java_row(sock, args.requests, not args.no_build),
        ]
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"get of group {GROUP!r} from {STATE.relative_to(ROOT)} (2 ConfigSets), "
        f"reference server {sys.executable} -m konorkestra.testing.fakeagent, "
        f"{os.cpu_count()} CPUs"
    )
    print(table(rows))
    if args.json:
        print(json.dumps([asdict(r) for r in rows]))
    skipped = any(r.note.startswith("skipped") for r in rows)
    return 1 if skipped and os.environ.get("KONORKESTRA_REQUIRE_ALL") == "1" else 0


if __name__ == "__main__":
    sys.exit(main())
