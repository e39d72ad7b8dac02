"""Numbers for ``bench/fanout.py``: one :class:`Row` per (system, N), and the side-by-side table.

Invariants: a percentile is the nearest-rank value of the samples (p99 of 1,000
samples is the 990th smallest); CPU % is CPU seconds over wall seconds, as % of
one core; RSS is ``VmRSS`` from ``/proc/<pid>/status``.
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Row:
    system: str
    n: int
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    first_ms: float  # median over publishes of the first client notified
    rss_mib: float
    idle_cpu_pct: float
    client_rss_mib: float
    client_idle_cpu_pct: float
    client_fanout_cpu_pct: float  # the busiest publish: client CPU / fan-out wall time
    idle_seconds: float
    load: str


def row_of(
    system: str, n: int, lat_ms: list[float], first_ms: list[float], rss: tuple[float, float],
    idle: list[float], busy: list[float], idle_seconds: float,
) -> Row:  # fmt: skip
    return Row(
        system=system, n=n, samples=len(lat_ms),
        p50_ms=round(statistics.median(lat_ms), 1), p99_ms=round(percentile(lat_ms, 99), 1),
        max_ms=round(max(lat_ms), 1), first_ms=round(statistics.median(first_ms), 1),
        rss_mib=round(rss[0], 1), idle_cpu_pct=round(idle[0], 2),
        client_rss_mib=round(rss[1], 1), client_idle_cpu_pct=round(idle[1], 2),
        client_fanout_cpu_pct=round(max(busy), 1), idle_seconds=idle_seconds,
        load=" ".join(f"{x:.2f}" for x in os.getloadavg()),
    )  # fmt: skip


def print_table(rows: list[Row]) -> None:
    """All rows, grouped by N, ours and etcd's side by side."""
    head = (f"{'N':>6}  {'system':<22} {'first ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
            f"{'RSS MiB':>8} {'idle CPU':>8}   {'client: RSS MiB':>15} {'idle':>6} "
            f"{'fanout':>6}  load")  # fmt: skip
    print(
        "\npublish → notified (over every client and publish), server RSS with N parked, "
        "server idle CPU (% of a core)"
    )
    print(head)
    print("-" * len(head))
    for r in sorted(rows, key=lambda r: r.n):
        print(f"{r.n:>6}  {r.system:<22} {r.first_ms:>8.1f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} "
              f"{r.max_ms:>8.1f} "
              f"{r.rss_mib:>8.1f} {r.idle_cpu_pct:>7.2f}%   {r.client_rss_mib:>15.1f} "
              f"{r.client_idle_cpu_pct:>5.1f}% {r.client_fanout_cpu_pct:>5.0f}%  {r.load}",
              flush=True)  # fmt: skip
