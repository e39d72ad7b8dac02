"""Benchmark: dashboard page server time with 1,000 nodes and 100 Releases.

Usage::

    .venv/bin/python bench/ui.py                  # 1,000 nodes, 100 Releases, 3 runs
    .venv/bin/python bench/ui.py --nodes 200 --releases 20 --runs 1 --requests 10

All real (issue 16): a ``konorkestra center`` process over its SQLite store. A first
start creates the store and keys and ingests the example repo; then, with the Center
stopped, the store is seeded through the Center's own functions: ``--nodes`` node
rows (each in one or two of the example Groups), ``--releases`` more Releases signed
by the real :class:`~konorkestra.center.releases.signer.Releaser` with the data
directory's release key, and per node an agent report (the latest Release of each
of its Groups committed, two processes that saw it, one ack applied and one failed)
stored by ``store_reports``, as the report writer does. The Center restarts (its
rollout runner starts rollouts for the new Releases), the bench logs in through the
dashboard's form like a browser, and requests every page ``--requests`` times per run.

Server time is each answer's ``Server-Timing: app;dur=`` (session check, queries,
rendering: ``konorkestra/center/ui/web.py``), not the client's round trip; both are
printed, in two modes: ``steady`` (nothing new between two requests: the pages'
caches hold) and ``changing`` (one more agent report stored before every request,
as during a rollout: every page recomputes what the report could change). The
target is p95 < 200 ms on every page in both modes; the exit code is 1 when missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from konorkestra.center.agentapi.reportrows import store_reports
from konorkestra.center.agentapi.reports import parse_report
from konorkestra.center.app.datadir import open_data_dir
from konorkestra.center.releases.rows import release_from_row
from konorkestra.center.releases.signer import ReleasePlan, Releaser
from konorkestra.center.store import schema
from konorkestra.demo import ConfigRepo, Stack, examples_dir
from konorkestra.demo.procs import wait_until
from konorkestra.model.release import PolicyRef

TARGET_MS = 200.0
TIMING = re.compile(r"app;dur=([0-9.]+)")


def groups_of(i: int, groups: list[str]) -> list[str]:
    """Node ``i``'s Groups: one, and every third node a second one."""
    return [groups[i % len(groups)]] + ([groups[(i + 1) % len(groups)]] if i % 3 == 0 else [])


def seed(data: Path, nodes: int, releases: int) -> tuple[str, str]:
    """Seed the stopped Center's store; ``(a node id, a group)`` to visit."""
    opened = open_data_dir(data)
    engine = opened.engine
    releaser = Releaser([opened.signers["release"]], source_repo="bench")
    now = dt.datetime.now(dt.UTC)
    R = schema.releases
    with engine.connect() as conn:
        latest = {
            row.group: row for row in conn.execute(sa.select(R).order_by(R.c.sequence)).mappings()
        }
    groups = sorted(latest)
    made = 0
    while made < releases:
        with engine.begin() as conn:
            for group in groups:
                if made >= releases:
                    break
                base = release_from_row(latest[group])
                body = dict(latest[group]["policy"]["body"])
                plan = ReleasePlan(
                    group=base.group, members=base.configsets,
                    policy=PolicyRef(base.policy.name, base.policy.digest, base.policy.strategy),
                    policy_body=body, source_commit=base.commit or "0" * 40, author="bench",
                    committed_at=now, created_by="bench", origin="manual",
                    reason=f"bench release {made}",
                )  # fmt: skip
                releaser.insert(conn, plan)
                made += 1
    with engine.connect() as conn:
        latest_rel = {
            row.group: release_from_row(row)
            for row in conn.execute(sa.select(R).order_by(R.c.sequence)).mappings()
        }
    ids = [f"bench-{i:05d}" for i in range(nodes)]
    with engine.begin() as conn:
        for i, node in enumerate(ids):
            member = [groups[i % len(groups)]] + (
                [groups[(i + 1) % len(groups)]] if i % 3 == 0 else []
            )
            conn.execute(sa.insert(schema.nodes).values(
                id=node, name=node, groups=member, labels={"zone": f"z{i % 4}", "tier": "web"},
                cert_serial=f"{i:x}", cert_not_after=now + dt.timedelta(days=30 - i % 40),
                last_seen=now - dt.timedelta(seconds=i % 300), created_at=now,
            ))  # fmt: skip
    batch: list[tuple[str, Any]] = []
    for i, node in enumerate(ids):
        member = groups_of(i, groups)
        applied, events = [], []
        for group in member:
            rel = latest_rel[group]
            at = now.timestamp() - i % 60
            applied.append({"group": group, "release": rel.id, "sequence": rel.sequence,
                            "digest": rel.digest, "at": at})  # fmt: skip
            for pid, status in ((1000 + i, "applied"), (2000 + i, "failed")):
                proc = {"pid": pid, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app",
                        "start_time": 1}  # fmt: skip
                common = {"group": group, "process": proc, "client": "web", "release": rel.id}
                events.append({"kind": "delivery", "at": at, **common,
                               "sequence": rel.sequence, "via": "watch"})  # fmt: skip
                error = None if status == "applied" else "reload refused"
                events.append({"kind": "ack", "at": at, **common, "status": status,
                               "error": error})  # fmt: skip
        batch.append((node, parse_report({"applied": applied, "events": events})))
        if len(batch) == 100:
            store_reports(engine, batch)
            batch = []
    if batch:
        store_reports(engine, batch)
    engine.dispose()
    return ids[0], groups[0]


def login(client: httpx.Client, token: str) -> None:
    form = client.get("/ui/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    if nonce is None:
        raise SystemExit(f"no log-in form at /ui/login: HTTP {form.status_code}")
    answer = client.post(
        "/ui/login", data={"nonce": nonce.group(1), "token": token}, follow_redirects=True
    )
    if answer.status_code != 200 or "/ui/login" in str(answer.url):
        raise SystemExit(f"log-in failed: HTTP {answer.status_code}")


Change = Callable[[], None] | None


def reporter(data: Path, node: str, group: str) -> Callable[[], None]:
    """Store one more agent report from ``node`` (an app's latency metric), as the
    report writer would: every page's cached reads are stale after it."""
    engine = open_data_dir(data).engine
    proc = {"pid": 4242, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app", "start_time": 1}

    def report() -> None:
        event = {"kind": "report", "at": time.time(), "group": group, "process": proc,
                 "client": "web", "metric": "latency_p99_ms", "value": 12.5}  # fmt: skip
        store_reports(engine, [(node, parse_report({"events": [event]}))])

    return report


def measure(
    client: httpx.Client, path: str, count: int, change: Change
) -> tuple[list[float], list[float]] | str:
    """``(server ms, round-trip ms)`` of ``count`` GETs, each after ``change`` if given,
    or why the page was skipped."""
    server, wall = [], []
    for n in range(count + 2):  # two warm-ups
        if change is not None:
            change()
        start = time.perf_counter()
        answer = client.get(path)
        took = (time.perf_counter() - start) * 1000
        if answer.status_code != 200:
            return f"HTTP {answer.status_code}"
        found = TIMING.search(answer.headers.get("server-timing", ""))
        if found is None:
            return "no Server-Timing header"
        if n >= 2:
            server.append(float(found.group(1)))
            wall.append(took)
    return server, wall


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20, help="GETs per page per run")
    args = parser.parse_args()
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        root = Path(tmp)
        repo = ConfigRepo.create(root, seed=examples_dir() / "config-repo")
        repo.push()
        with Stack(root) as stack:
            center = stack.center(repo.bare)
            center.wait_commit(repo.head())
            center.stop()
            start = time.monotonic()
            node, group = seed(center.data, args.nodes, args.releases)
            print(f"seeded {args.nodes} nodes, {args.releases} Releases and their reports "
                  f"in {time.monotonic() - start:.1f} s")  # fmt: skip
            center.start()
            newest = center.get("/v1/releases", limit=1)["releases"][0]["id"]
            latest: dict[str, str] = {}
            for made in center.get("/v1/releases", limit=1000)["releases"]:  # newest first
                latest.setdefault(made["group"], made["id"])
            # The runner starts each Group's rollout of the seeded Releases first: measure
            # pages over those, not over the first reads of rollouts being replaced.
            wait_until(
                lambda: {s["group"]: s["release"]["id"] for s in
                         center.get("/v1/rollouts")["rollouts"]} == latest,
                timeout=60, what="the rollout runner to start the seeded Releases' rollouts",
            )  # fmt: skip
            pages = [
                "/ui/", f"/ui/rollouts/{group}", f"/ui/releases/{newest}", "/ui/nodes",
                f"/ui/nodes/{node}", "/ui/commits", "/ui/audit",
            ]  # fmt: skip
            ca = center.ca_file
            verify = ssl.create_default_context(cafile=str(ca)) if ca else True
            with httpx.Client(base_url=center.url, verify=verify, timeout=30) as client:
                login(client, center.admin_token)
                modes: dict[str, Change] = {
                    "steady": None,  # nothing new between two requests
                    "changing": reporter(center.data, node, group),  # a report before each one
                }
                results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
                for run in range(1, args.runs + 1):
                    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
                    print(f"run {run} (load {load}):")
                    for mode, change in modes.items():
                        for path in pages:
                            got = measure(client, path, args.requests, change)
                            if isinstance(got, str):
                                print(f"  {mode:<8} {path:<40} skipped: {got}")
                                continue
                            server, wall = got
                            row = (statistics.median(server), p95(server), statistics.median(wall))
                            results.setdefault((mode, path), []).append(row)
                            worst = max(worst, row[1])
                            print(f"  {mode:<8} {path:<40} server p50 {row[0]:6.1f} ms  "
                                  f"p95 {row[1]:6.1f} ms   round trip p50 "
                                  f"{row[2]:6.1f} ms")  # fmt: skip
    print("ranges over the runs (server time, p50 / p95):")
    for (mode, path), rows in results.items():
        if rows:
            lo50, hi50 = min(r[0] for r in rows), max(r[0] for r in rows)
            lo95, hi95 = min(r[1] for r in rows), max(r[1] for r in rows)
            print(f"  {mode:<8} {path:<40} p50 {lo50:.1f}–{hi50:.1f} ms   "
                  f"p95 {lo95:.1f}–{hi95:.1f} ms")  # fmt: skip
    verdict = "under" if worst < TARGET_MS else "OVER"
    print(f"worst p95 {worst:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
