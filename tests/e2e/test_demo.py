"""``konorkestra demo`` as a user runs it: a subprocess that must pass, say so, and clean up."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from konorkestra.demo.procs import tool

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end_and_cleans_up() -> None:
    env = {**os.environ, "COLUMNS": "140", "NO_COLOR": "1"}
    started = time.monotonic()
    proc = subprocess.run(
        [*tool("konorkestra"), "demo"], capture_output=True, text=True, env=env, timeout=120
    )
    took = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert took < 60, f"the demo took {took:.1f}s"
    for n in range(1, 9):
        assert re.search(rf"^✓ {n}/8 ", out, re.M), f"step {n} not passed:\n{out}"
    assert "✗" not in out
    assert re.search(r"serving https://127\.0\.0\.1:\d+ \(pid \d+, TLS on\)", out)
    assert re.search(r"app: applied checkout-2-\w+: checkout-api\.timeout_ms = 650", out)
    latency = re.search(r"push → app: (\d+) ms", out)
    assert latency and int(latency.group(1)) < 10_000
    assert re.search(r"saw checkout-2-\w+, ack applied", out)  # konorctl nodes show
    assert re.search(r"│ \w{12} │ rejected │", out)  # konorctl commits
    assert "timeout_ms: 5 is less than the minimum of 10 [data-schema]" in out
    assert "still running on timeout_ms = 650" in out
    assert "✓ Demo passed" in out
    assert "stopped every process and removed the temporary directory" in out
