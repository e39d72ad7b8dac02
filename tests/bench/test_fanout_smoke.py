"""``bench/fanout.py`` runs end to end at a toy size and prints numbers for ours and etcd's.

A real Center with 20 enrolled nodes, 20 parked long-polls in a real client
process, one warm-up and one measured publish (a ``git push``), a 1 s idle
window; then etcd with TLS client auth and plain, the same way. Without an
``etcd`` binary the etcd half is skipped, except under ``KONORKESTRA_REQUIRE_ALL=1``
(CI), where a missing etcd fails the test. ``--mode stream`` (the agent stream,
``GET /v1/agent/stream``) runs the same way, without etcd.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
_spec = importlib.util.spec_from_file_location("bench_fanout", BENCH / "fanout.py")
assert _spec is not None and _spec.loader is not None
fanout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fanout)

pytestmark = pytest.mark.slow


def etcd_or_skip() -> str:
    """``both`` when etcd is installed; else skip, or fail under KONORKESTRA_REQUIRE_ALL=1."""
    if fanout.etcd_binary() is not None:
        return "both"
    why = "etcd is not installed (Debian package etcd-server)"
    if os.environ.get("KONORKESTRA_REQUIRE_ALL") == "1":
        pytest.fail(
            f"fan-out smoke test cannot compare with etcd: {why} (KONORKESTRA_REQUIRE_ALL=1)"
        )
    return "skip"


def test_fanout_prints_numbers_for_ours_and_etcd(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etcd = etcd_or_skip()
    out = tmp_path / "rows.json"
    argv = ["--n", "20", "--publishes", "1", "--idle-seconds", "1", "--mode", "poll",
            "--etcd-tls", etcd, "--fleet-dir", str(tmp_path / "fleet"),
            "--json", str(out)]  # fmt: skip
    assert fanout.main(argv) == 0
    rows = {row["system"]: row for row in json.loads(out.read_text())}
    printed = capsys.readouterr().out
    expected = ["ours (poll)"]
    if etcd == "both":
        expected += ["etcd (TLS+client auth)", "etcd (plain)"]
    assert sorted(rows) == sorted(expected)
    for system in expected:
        row = rows[system]
        assert row["n"] == 20 and row["samples"] == 20, row
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"] < 60_000, row
        assert row["rss_mib"] > 1 and row["client_rss_mib"] > 1, row
        assert row["idle_cpu_pct"] >= 0, row
        assert f"    20  {system}" in printed, printed
    if etcd == "skip":
        pytest.skip("ours measured; etcd is not installed, so nothing to compare with")


def test_fanout_stream_mode_prints_numbers_for_ours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--mode stream``: the same fleet on ``GET /v1/agent/stream``, etcd left out."""
    out = tmp_path / "rows.json"
    argv = ["--n", "20", "--publishes", "1", "--idle-seconds", "1", "--mode", "stream",
            "--etcd-tls", "skip", "--fleet-dir", str(tmp_path / "fleet"),
            "--json", str(out)]  # fmt: skip
    assert fanout.main(argv) == 0
    [row] = json.loads(out.read_text())
    assert row["system"] == "ours (stream)" and row["samples"] == 20, row
    assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"] < 60_000, row
    assert "    20  ours (stream)" in capsys.readouterr().out
