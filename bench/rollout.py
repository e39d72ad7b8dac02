"""Benchmark: guard breach -> every affected node on the rollback Release; Center CPU per decision.

Usage::

    .venv/bin/python bench/rollout.py                     # 100 agents, 3 runs, first step 100 %
    .venv/bin/python bench/rollout.py --runs 5 --percent 50 --window 60

All real (issue 14): ``git push``, a ``konorkestra center`` process (TLS, SQLite), real
agents (``Agent``, ``--workers`` processes of them, as bench/propagation.py runs them),
each with one ``konorkestra.sdk`` client on its Unix socket as its app. The bench's
Policy (pushed after the seed, promoted): one step of ``--percent``, guards ``failed_acks
0`` and ``ack_success_rate 1``, ``onFailure: rollback``, 10 min bakes. Per run:

1. **Breach -> rollback committed.** Push ``checkout-flags`` with ``failBadReload``: the
   apps raise in their callback, the SDK acks ``failed`` through the agent, the runner
   breaches and signs the rollback. Affected = the first wave (the engine's ``wave_order``
   and ``wave_size``, checked against the API). Per node, on one wall clock: t_commit -
   t_breach. t_breach = ``details.at`` of the ``guard.breached`` audit event: the ``now``
   the runner gave the decision that saw the breach, taken before it read the reports (the
   audit row's ``at``, written with the signed rollback: "decided -> recorded"). t_commit
   = the agent's ``ServedState.committed`` call for the rollback Release: right after the
   store commit, before the apps hear of it.
2. **CPU per decision.** Push a good Release; while its wave bakes every app
   ``report()``s each ``--report-every`` s (an agent sends ~1 report / 2 s). Over
   ``--window`` s the Center's CPU (``/proc/<pid>/stat``; no psutil) is divided by the
   runner's decisions (``konorkestra_rollout_decisions_total``, all Groups; so it counts
   storing the reports too: an upper bound), with the rollout's ``revision`` unmoved. A
   bench-only wrapper the Center runs under (``--center-probe``, no Center code changed)
   logs each ``step_group`` call (one decision for one Group): Group, start, thread CPU,
   shown for ``checkout`` (all; first, last third) and other Groups. Then: ``promote``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from konorkestra.demo import ConfigRepo, Proc, Stack, edits, examples_dir
from konorkestra.demo.procs import tool, wait_until
from konorkestra.demo.stack import CenterHandle
from konorkestra.model.types import GroupName, NodeId
from konorkestra.rollout.inputs import Node
from konorkestra.rollout.waves import wave_order, wave_size

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from propagation import cpu_seconds, enroll_all, percentile  # noqa: E402  (bench/propagation.py)

GROUP = "checkout"
Row = dict[str, Any]
POLICY = """apiVersion: konorkestra.io/v1
kind: Policy
metadata: {name: canary}
spec:
  strategy: canary
  approval: auto
  onFailure: rollback
  steps: [{percent: %d, bake: 10m}%s]
  guards: [{signal: failed_acks, threshold: 0}, {signal: ack_success_rate, threshold: 1}]
"""


def center_probe(out: Path, argv: list[str]) -> int:
    """``konorkestra center <argv>``, each of the runner's decisions logged to ``out``."""
    from konorkestra.center.rollouts import runner
    from konorkestra.center.rollouts.step import step_group
    from konorkestra.cli.daemon import main as daemon_main

    sink, lock = out.open("a", buffering=1), threading.Lock()

    def timed(*args: Any, **kwargs: Any) -> Any:  # step_group(engine, releaser, group, now)
        wall, cpu = time.time(), time.thread_time()
        result = step_group(*args, **kwargs)
        with lock:
            sink.write(f"{args[2]} {wall:.6f} {time.thread_time() - cpu:.6f}\n")
        return result

    setattr(runner, "step_group", timed)  # noqa: B010
    sys.argv = ["konorkestra", *argv]
    daemon_main()
    return 0


def start_center(stack: Stack, repo: ConfigRepo, probe: Path) -> CenterHandle:
    center = CenterHandle(stack.root, repo.bare, ("--log-level", "warning"))
    center.proc.argv = [sys.executable, str(Path(__file__).resolve()), "--center-probe",
                        str(probe), *center.proc.argv[len(tool("konorkestra")):]]  # fmt: skip
    stack.centers.append(center)
    stack.procs.append(center.proc)
    center.start()
    center.wait_commit(repo.head())
    return center


def worker(listing: Path, flag: Path, every: float) -> int:
    from konorkestra import sdk
    from konorkestra.agent.config import AgentConfig
    from konorkestra.agent.daemon import Agent
    from konorkestra.agent.store import CommittedRelease

    def emit(text: str) -> None:  # one write(2) of < PIPE_BUF bytes: lines never interleave
        os.write(1, f"{text}\n".encode())

    def app(agent: Agent) -> sdk.Client:
        """Stamp the agent's commits; connect its app, which rejects ``failBadReload``."""
        inner, node = agent.served.committed, agent.node.node_id

        def committed(rel: CommittedRelease) -> None:
            at = time.time()
            inner(rel)
            emit(f"commit {node} {rel.sequence} {at:.6f}")

        def reload(new: sdk.Config, old: sdk.Config | None) -> None:
            bad = new["checkout-flags"].get("failBadReload") is True
            emit(f"ack {node} {new.sequence} {time.time():.6f} {'failed' if bad else 'applied'}")
            if bad:
                raise RuntimeError("failBadReload is set")

        setattr(agent.served, "committed", committed)  # noqa: B010
        client = sdk.connect(str(agent.socket), name=f"app-{node}")
        client.watch(GROUP, reload, since=client.get_config(GROUP))
        return client

    def reporting(clients: list[sdk.Client]) -> None:
        while True:  # a load generator: a fixed pace, not a wait for a condition
            if flag.exists():
                for client in clients:
                    client.report(GROUP, "error_rate", 0.0)
            time.sleep(every)

    async def main() -> None:
        agents = [Agent.from_data_dir(d, AgentConfig.load(d).with_overrides(
            socket=d / "agent.sock", allow_uids=None))
            for d in map(Path, json.loads(listing.read_text()))]  # fmt: skip
        tasks = [asyncio.create_task(a.run(asyncio.Event())) for a in agents]
        await asyncio.gather(*(a.ready.wait() for a in agents))
        while not all(a.served.current(GROUP) is not None for a in agents):
            await asyncio.sleep(0.1)
        clients = await asyncio.to_thread(lambda: [app(a) for a in agents])
        threading.Thread(target=reporting, args=(clients,), daemon=True).start()
        emit("\n".join(f"node {a.node.node_id}" for a in agents) + f"\nready {len(agents)}")
        await asyncio.gather(*tasks)  # until SIGTERM (the parent's Stack stops us)

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(main())
    return 0


class Fleet:
    """Worker processes of agents + apps, and what they printed: node ids, commits, acks."""

    def __init__(self, stack: Stack, root: Path, dirs: list[Path], n: int, every: float) -> None:
        self.procs, self.read, self.nodes = list[Proc](), [0] * n, list[str]()
        self.commits: dict[str, dict[int, float]] = defaultdict(dict)
        self.acks: dict[int, list[tuple[float, str]]] = defaultdict(list)  # seq -> (t, outcome)
        for w in range(n):
            listing = root / f"worker-{w}.json"
            listing.write_text(json.dumps([str(d) for d in dirs[w::n]]))
            argv = [sys.executable, __file__, "--worker", str(listing), str(root / "reporting"),
                    str(every)]  # fmt: skip
            self.procs.append(Proc(f"worker {w}", argv, log=root / f"w{w}.log", capture=True))
            stack.procs.append(self.procs[-1].start())
        for proc in self.procs:
            proc.wait_line(r"^ready ", timeout=60 + len(dirs) / 5, what="agents and apps ready")
        self.collect()

    def collect(self) -> None:
        for i, proc in enumerate(self.procs):
            lines = proc.lines[self.read[i] :]
            self.read[i] += len(lines)
            for line in lines:
                kind, *rest = line.text.split() or [""]
                if kind == "node":
                    self.nodes.append(rest[0])
                elif kind == "commit":
                    self.commits[rest[0]][int(rest[1])] = float(rest[2])
                elif kind == "ack":
                    self.acks[int(rest[1])].append((float(rest[2]), rest[3]))

    def on(self, nodes: list[str], seq: int) -> bool:
        self.collect()
        return all(seq in self.commits[n] for n in nodes)


def audit_after(center: CenterHandle, cursor: int) -> tuple[list[dict[str, Any]], int]:
    """Audit events after ``cursor`` (a run adds a dozen: one page is enough) and the new one."""
    events: list[dict[str, Any]] = center.get("/v1/audit", after=cursor, limit=5000)["events"]
    return events, events[-1]["seq"] if events else cursor


def push_flags(repo: ConfigRepo, version: int, *, bad: bool) -> None:
    repo.write(edits.FLAGS_FILE, edits.checkout_flags(version, fail_reload=bad), append=True)
    repo.write(edits.GROUP_FILE, edits.checkout_group(version))
    repo.commit(f"bench: checkout-flags v{version}" + (" failBadReload" if bad else ""))
    repo.push()


def breach(center: CenterHandle, repo: ConfigRepo, fleet: Fleet, affected: list[str],
           k: int, seq: int, cursor: int) -> tuple[Row, int, int]:  # fmt: skip
    """Push a bad Release (sequence ``seq + 1``); its rollback must be ``seq + 2``."""
    bad, back = seq + 1, seq + 2
    push_flags(repo, 4 + 2 * k, bad=True)
    wait_until(lambda: fleet.on(affected, back), timeout=120, watch=[center.proc, *fleet.procs],
               what=f"{len(affected)} affected agents to commit #{back}")  # fmt: skip
    st = center.get(f"/v1/rollouts/{GROUP}")
    got = (st["release"]["sequence"], st["phase"], (st["rollback"] or {}).get("sequence"))
    if got != (bad, "rolled_back", back) or st["waves"][0]["nodes"] != len(affected):
        raise SystemExit(f"unexpected rollout status: {json.dumps(st)[:1500]}")
    events, cursor = audit_after(center, cursor)
    [hit] = [e for e in events if e["action"] == "guard.breached"
             and e["details"]["release"] == st["release"]["id"]]  # fmt: skip
    t_breach, t_row = (
        dt.datetime.fromisoformat(t).timestamp() for t in (hit["details"]["at"], hit["at"])
    )
    lat = [(fleet.commits[n][back] - t_breach) * 1000 for n in affected]
    failed = [t for t, outcome in fleet.acks[bad] if outcome == "failed"]
    row: Row = {"affected": len(affected),
                "exposed": sum(bad in fleet.commits[n] for n in affected),
                "leaked": sum(bad in fleet.commits[n] for n in fleet.nodes if n not in affected),
                "detect_ms": (t_breach - min(failed)) * 1000 if failed else float("nan"),
                "record_ms": (t_row - t_breach) * 1000, "p50": statistics.median(lat),
                "p95": percentile(lat, 95), "p99": percentile(lat, 99),
                "max": max(lat), "min": min(lat)}  # fmt: skip
    print(f"  {st['release']['id']} -> rollback {st['rollback']['id']}: wave {len(affected)} "
          f"nodes ({row['exposed']} had committed the bad Release; {row['leaked']} outside "
          f"it did); first failed ack -> breach decided {row['detect_ms']:.0f} ms, decided -> "
          f"recorded {row['record_ms']:.0f} ms\n  guard.breached -> rollback committed on "
          f"{len(lat)} affected nodes: min {row['min']:.0f} ms  p50 {row['p50']:.0f} ms  p95 "
          f"{row['p95']:.0f} ms  p99 {row['p99']:.0f} ms  max {row['max']:.0f} ms")  # fmt: skip
    return row, back, cursor


def scrape(center: CenterHandle) -> dict[str, float]:
    """/metrics: reports stored, the runner's decisions by outcome and their wall seconds."""
    out: dict[str, float] = defaultdict(float)
    for f in text_string_to_metric_families(center.http.get("/metrics").text):
        for m in f.samples:
            if m.name == "konorkestra_rollout_decisions_total":
                out[m.labels["outcome"]] += m.value
            elif m.name == "konorkestra_rollout_decision_seconds_sum":
                out["seconds"] += m.value
            elif m.labels.get("route") == "/v1/agent/reports" and m.name.endswith("_total"):
                out["reports"] += m.value
    return out


def status_when(center: CenterHandle, seq: int, phase: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        st: dict[str, Any] = center.get(f"/v1/rollouts/{GROUP}")
        return st if (st["release"]["sequence"], st["phase"]) == (seq, phase) else None

    return wait_until(probe, timeout=120, interval=0.2, watch=[center.proc],
                      what=f"rollout of #{seq} {phase}")  # fmt: skip


def cpu_window(center: CenterHandle, repo: ConfigRepo, k: int, seq: int, probe: Path,
               flag: Path, window: float) -> tuple[Row, int]:  # fmt: skip
    """Push a good Release (``seq + 1``); measure while its first wave bakes; promote it."""
    push_flags(repo, 5 + 2 * k, bad=False)
    before = status_when(center, seq + 1, "baking")
    flag.touch()
    time.sleep(3.0)  # the report stream reaches its pace (a warm-up, not a condition wait)
    was, offset = scrape(center), probe.stat().st_size
    cpu, t0 = cpu_seconds(center.proc.pid), time.time()
    time.sleep(window)  # the measurement window
    cpu, t1 = cpu_seconds(center.proc.pid) - cpu, time.time()
    m = {k: v - was.get(k, 0.0) for k, v in scrape(center).items()}
    flag.unlink()
    lines = probe.read_bytes()[offset:].decode().splitlines()
    calls = [c for c in map(str.split, lines) if t0 <= float(c[1]) <= t1]
    mine = [float(c[2]) * 1000 for c in calls if c[0] == GROUP]
    other = [float(c[2]) * 1000 for c in calls if c[0] != GROUP] or [float("nan")]
    n = sum(m.get(k, 0.0) for k in ("changed", "unchanged", "retried", "failed"))
    if center.get(f"/v1/rollouts/{GROUP}")["revision"] != before["revision"] or not mine:
        raise SystemExit("the rollout moved (or was never decided) in the CPU window")
    third = max(1, len(mine) // 3)  # the first and last third: does a decision's cost grow?
    row: Row = {"reports": m["reports"], "decisions": n, "cpu_s": cpu,
                "per_decision_ms": cpu * 1000 / n, "wall_ms": m["seconds"] * 1000 / n,
                "step_ms": statistics.fmean(mine), "step_p99_ms": percentile(mine, 99),
                "first_ms": statistics.fmean(mine[:third]),
                "last_ms": statistics.fmean(mine[-third:])}  # fmt: skip
    print(f"  CPU window {t1 - t0:.1f} s while {GROUP} bakes: {m['reports']:.0f} agent reports "
          f"stored; {n:.0f} runner decisions (konorkestra_rollout_decisions_total, "
          f"{m['unchanged']:.0f} unchanged), {len(mine)} of them for {GROUP}\n"
          f"    Center process CPU {cpu:.2f} s (all its work, reports included): "
          f"{row['per_decision_ms']:.1f} ms per decision, {cpu * 1000 / len(mine):.1f} ms per "
          f"pass (one {GROUP} decision each); wall {row['wall_ms']:.1f} ms per decision "
          f"(konorkestra_rollout_decision_seconds)\n    thread CPU inside step_group "
          f"for {GROUP}: mean {row['step_ms']:.1f} ms, p99 {row['step_p99_ms']:.1f} ms, first "
          f"third {row['first_ms']:.1f} ms, last third {row['last_ms']:.1f} ms; for the other "
          f"Groups (no nodes) {statistics.fmean(other):.1f} ms")  # fmt: skip
    promote(center, seq + 1)
    return row, seq + 1


def promote(center: CenterHandle, seq: int) -> None:
    resp = center.http.post(f"/v1/rollouts/{GROUP}/promote", json={"reason": "bench"},
                            headers={"Authorization": f"Bearer {center.admin_token}"})  # fmt: skip
    if resp.status_code not in (200, 202):
        raise SystemExit(f"promote: HTTP {resp.status_code}: {resp.text[:300]}")
    status_when(center, seq, "completed")


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def span(rows: list[Row], key: str, fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(min(r[key] for r in rows))}-{fmt.format(max(r[key] for r in rows))}"


def bench(args: argparse.Namespace) -> list[Row]:
    root = Path(tempfile.mkdtemp(prefix="kbench-rollout-"))
    repo = ConfigRepo.create(root, seed=examples_dir() / "config-repo")
    repo.push()  # the seed first (its Policy completes at once), then the bench's Policy
    probe, flag, rows = root / "decisions.log", root / "reporting", list[Row]()
    with Stack(root) as stack:
        center = start_center(stack, repo, probe)
        dirs = enroll_all(center, root, args.agents)
        fleet = Fleet(stack, root, dirs, max(1, min(args.workers, args.agents)),
                      args.report_every)  # fmt: skip
        order = wave_order(GroupName(GROUP), [Node(NodeId(n)) for n in fleet.nodes], {})
        affected = [str(n) for n in order[: wave_size(args.percent, len(order))]]
        seq = center.get(f"/v1/rollouts/{GROUP}")["release"]["sequence"] + 1
        more = ", {percent: 100, bake: 10m}" * (args.percent < 100)
        repo.write("policies/canary.yaml", POLICY % (args.percent, more))
        sha = repo.commit("bench: one big step, fail on the first failed ack, long bakes")
        repo.push()
        if (got := center.wait_commit(sha))["status"] != "accepted":
            raise SystemExit(f"the bench's Policy was refused: {json.dumps(got)[:1000]}")
        status_when(center, seq, "baking")
        promote(center, seq)
        _, cursor = audit_after(center, 0)
        print(f"  {len(fleet.nodes)} agents + apps ready; {load()}")
        for k in range(args.runs):
            print(f"-- run {k + 1}/{args.runs} ({load()})")
            row, seq, cursor = breach(center, repo, fleet, affected, k, seq, cursor)
            cpu, seq = cpu_window(center, repo, k, seq, probe, flag, args.window)
            rows.append(row | cpu)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)  # kept when a run fails, for its logs
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--center-probe"]:  # the Center process, with the runner's calls timed
        return center_probe(Path(argv[1]), argv[2:])
    if argv[:1] == ["--worker"]:  # a process of agents and their apps
        return worker(Path(argv[1]), Path(argv[2]), float(argv[3]))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for flag, kind, default, text in (
        ("--agents", int, 100, "agents, each with one app"),
        ("--runs", int, 3, "runs (a breach and a CPU window each)"),
        ("--percent", int, 100, "the first step's percent of the nodes"),
        ("--window", float, 10.0, "seconds of the CPU window"),
        ("--report-every", float, 1.0, "seconds between each app's report() in the window"),
        ("--workers", int, 2, "processes that run the agents"),
    ):
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default {default})")
    parser.add_argument("--keep", action="store_true", help="keep the run directory and logs")
    args = parser.parse_args(argv)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]  # sockets: raise the soft limit
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # (children inherit it)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress, live
    print(f"$ {shlex.join([sys.executable, *sys.argv])}")
    print(f"rollout bench: {args.agents} agents, first step {args.percent} %, {args.runs} runs; "
          f"{os.cpu_count()} CPUs; {load()}")  # fmt: skip
    rows = bench(args)
    print(f"range over {len(rows)} runs ({os.cpu_count()} CPUs, {load()} at the end):\n"
          f"  guard.breached -> rollback committed: p50 {span(rows, 'p50')} ms, p95 "
          f"{span(rows, 'p95')} ms, p99 {span(rows, 'p99')} ms (target < 2000), max "
          f"{span(rows, 'max')} ms; first failed ack -> breach {span(rows, 'detect_ms')} ms\n"
          f"  Center CPU per decision {span(rows, 'per_decision_ms', '{:.1f}')} ms (all work), "
          f"inside step_group for {GROUP} {span(rows, 'step_ms', '{:.1f}')} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
