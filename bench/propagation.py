"""Benchmark B1: ``git push`` → every agent's SDK callback fired, end to end, TLS on.

Usage::

    .venv/bin/python bench/propagation.py                       # --agents 1,100,1000
    .venv/bin/python bench/propagation.py --agents 1 --pushes 20
    .venv/bin/python bench/propagation.py --agents 1000 --workers 2 --pushes 3

Everything is real: a bare Git repo pushed with the ``git`` CLI, a
``konorkestra center`` process (TLS, its own CA; ingest by watching the repo),
join tokens created through the API, enrollment through ``POST /v1/enroll``.

* **1 agent**: ``konorkestra agent run`` and the sample app
  (``examples/apps/checkout_app.py``) as processes; t1 is when the app's
  ``applied`` line arrives on its stdout.
* **N agents**: ``--workers`` processes each run N/workers instances of the
  real agent (:class:`konorkestra.agent.daemon.Agent`: store with fsync, sync
  loop over mTLS with its own node certificate, UDS server, reporter), each
  with a real SDK client (``konorkestra.sdk``) watching the group; t1 is when
  that client's callback runs. Join tokens are created in bulk through the API
  and nodes enroll concurrently with the real ``identity.join``; the Center
  rate-limits enrollment per source address, so each enrolling thread binds
  its own loopback source address (127.0.x.y).

The bench's copy of the repo puts ``checkout`` on the ``all-at-once`` Policy:
this measures delivery, not a canary's waits (``bench/rollout.py`` does those).
t0 is taken just before ``git push``; all stamps are ``time.monotonic()``
(CLOCK_MONOTONIC, one clock for every process on this host). Prints p50 / p99
/ max over every (push, agent) pair and the Center's RSS (current and peak).
Targets on 2 cores (docs/research B1): 1 agent p50 < 300 ms; 1,000 agents p99 < 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from konorkestra.demo import ConfigRepo, DemoError, Proc, Stack, edits, examples_dir
from konorkestra.demo.gitrepo import git
from konorkestra.demo.procs import wait_until
from konorkestra.demo.stack import CenterHandle

GROUP = "checkout"
KEEP = False  # --keep: leave the run directories (logs, stores) in place
PER_SOURCE = 8  # enrollments per loopback source address (the Center allows a burst of 10)


# -- measurement helpers ------------------------------------------------------------------


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def summary(label: str, lat_ms: list[float], center_pid: int, extra: str = "") -> dict[str, Any]:
    rss, hwm = rss_kib(center_pid)
    row = {
        "agents": label,
        "samples": len(lat_ms),
        "p50_ms": round(statistics.median(lat_ms), 1),
        "p99_ms": round(percentile(lat_ms, 99), 1),
        "max_ms": round(max(lat_ms), 1),
        "center_rss_mib": round(rss / 1024, 1),
        "center_peak_rss_mib": round(hwm / 1024, 1),
        "note": extra,
    }
    print(
        f"  {label:>6} agents: n={row['samples']:<5} p50 {row['p50_ms']:8.1f} ms   "
        f"p99 {row['p99_ms']:8.1f} ms   max {row['max_ms']:8.1f} ms   "
        f"Center RSS {row['center_rss_mib']} MiB (peak {row['center_peak_rss_mib']} MiB) {extra}",
        flush=True,
    )
    return row


def push_change(repo: ConfigRepo, k: int) -> float:
    """Commit checkout-api version 3+k (a new timeout) and push; t0 (monotonic)."""
    repo.write(edits.API_FILE, edits.checkout_api(3 + k, timeout_ms=500 + k), append=True)
    repo.commit(f"bench: checkout-api v{3 + k}")
    return repo.push()


def start_center(stack: Stack, root: Path) -> tuple[ConfigRepo, CenterHandle]:
    repo = ConfigRepo.create(root, seed=examples_dir() / "config-repo")
    # Propagation speed, not a canary: checkout goes all-at-once here (the example's
    # canary Policy would hold every node but the canary for approval; bench/rollout.py
    # measures rollouts).
    group = (repo.work / edits.GROUP_FILE).read_text()
    assert "policy: canary" in group, "the example checkout Group changed; update the bench"
    repo.write(edits.GROUP_FILE, group.replace("policy: canary", "policy: all-at-once"))
    git(repo.work, "add", "-A")  # into the seed commit: one Release (sequence 1) to start from
    git(repo.work, "commit", "--quiet", "--amend", "--no-edit")
    repo.push()
    center = stack.center(repo.bare, "--log-level", "warning")
    center.wait_commit(repo.head())
    return repo, center


# -- 1 agent, real processes ---------------------------------------------------------------


def run_single(pushes: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="kbench-1-"))
    with Stack(root) as stack:
        repo, center = start_center(stack, root)
        agent = stack.agent("node-1")
        agent.join(center, center.create_token([GROUP]))
        agent.proc.argv += ["--log-level", "warning"]
        agent.start()
        agent.wait_committed(GROUP, 1)
        app = stack.app(agent, GROUP)
        app.proc.wait_line(r"^start ", timeout=20)
        lat: list[float] = []
        for k in range(pushes + 1):  # the first push warms up and is not counted
            start = len(app.proc.lines)
            t0 = push_change(repo, k)
            _, line = app.proc.wait_line(r"^applied ", start=start, timeout=30)
            if k:
                lat.append((line.at - t0) * 1000)
        row = summary("1", lat, center.proc.pid, "(agent + app processes)")
    if not KEEP:
        shutil.rmtree(root, ignore_errors=True)  # kept when a run fails, for its logs
    return row


# -- N simulated agents --------------------------------------------------------------------

_source = threading.local()


class _SourceBoundHttpx:
    """``httpx`` as :mod:`konorkestra.agent.identity` sees it, with a per-thread source address."""

    def __getattr__(self, name: str) -> Any:
        return getattr(httpx, name)

    @staticmethod
    def Client(**kwargs: Any) -> httpx.Client:  # mirrors httpx.Client
        transport = httpx.HTTPTransport(verify=kwargs["verify"], local_address=_source.address)
        return httpx.Client(transport=transport, **kwargs)


def enroll_all(center: CenterHandle, root: Path, n: int) -> list[Path]:
    from konorkestra.agent import identity

    t = time.monotonic()
    headers = {"Authorization": f"Bearer {center.admin_token}"}
    grants = []
    for _ in range(n):  # bulk through the API, one keep-alive connection
        resp = center.http.post(
            "/v1/join-tokens", json={"groups": [GROUP], "ttl_seconds": 3600}, headers=headers
        )
        resp.raise_for_status()
        grants.append(resp.json())
    made = time.monotonic() - t
    setattr(identity, "httpx", _SourceBoundHttpx())  # noqa: B010 - the real join(), per-thread source
    dirs = [root / "agents" / f"sim-{i:04d}" for i in range(n)]

    def enroll(i: int) -> None:
        _source.address = f"127.0.{1 + i // PER_SOURCE // 250}.{1 + i // PER_SOURCE % 250}"
        dirs[i].mkdir(mode=0o700, parents=True)
        identity.join(center.url, grants[i]["token"], grants[i]["ca_pin"], dirs[i],
                      name=f"sim-{i:04d}", timeout=60)  # fmt: skip

    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(enroll, range(n)))
    setattr(identity, "httpx", httpx)  # noqa: B010
    print(f"  {n} join tokens via the API in {made:.1f} s; {n} nodes enrolled "
          f"(16 concurrent) in {time.monotonic() - t:.1f} s", flush=True)  # fmt: skip
    return dirs


def all_fired(
    procs: list[Proc],
    starts: list[int],
    seq: int,
    seen: dict[str, float],
    n: int,
    got: dict[str, tuple[float, float]],
) -> bool:
    """Collect ``cb <node> <sequence> <t>`` lines for ``seq`` into ``seen`` and ``got
    <node> <sequence> <answer t> <committed t>`` lines into ``got``; all ``n`` there?"""
    for p, s in zip(procs, starts, strict=True):
        for line in p.lines[s:]:
            parts = line.text.split()
            if parts and parts[0] == "cb" and int(parts[2]) == seq:
                seen[parts[1]] = float(parts[3])
            elif parts and parts[0] == "got" and int(parts[2]) == seq:
                got[parts[1]] = (float(parts[3]), float(parts[4]))
    return len(seen) >= n


BREAKDOWN = (
    ("push -> first agent has the answer (ingest, sign, wake)", "first"),
    ("push -> agent has the answer", "answer"),
    ("answer -> handled (verify, blobs, commit, publish)", "commit"),
    ("handled -> SDK callback (socket, SDK; < 0: before)", "callback"),
)


def breakdown(
    t0: float, seen: dict[str, float], got: dict[str, tuple[float, float]]
) -> dict[str, list[float]]:
    """Per-stage milliseconds of one push, for the nodes that reported every stamp."""
    parts: dict[str, list[float]] = {key: [] for _label, key in BREAKDOWN}
    both = [node for node in seen if node in got]
    if both:
        parts["first"].append((min(got[n][0] for n in both) - t0) * 1000)
    for node in both:
        answer, committed = got[node]
        parts["answer"].append((answer - t0) * 1000)
        parts["commit"].append((committed - answer) * 1000)
        parts["callback"].append((seen[node] - committed) * 1000)
    return parts


def requests_by_route(center: CenterHandle) -> dict[str, float]:
    """``konorkestra_center_http_requests_total`` summed per ``METHOD route``."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(center.http.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "konorkestra_center_http_requests_total":
                key = f"{sample.labels['method']} {sample.labels['route']}"
                out[key] = out.get(key, 0.0) + sample.value
    return out


def print_breakdown(parts: dict[str, list[float]]) -> None:
    print("     where the time goes (ms, p50 / p99 over every agent and push):")
    for label, key in BREAKDOWN:
        values = parts[key]
        if values:
            print(f"       {label:<58} {statistics.median(values):8.1f} / "
                  f"{percentile(values, 99):8.1f}")  # fmt: skip


def run_fleet(n: int, pushes: int, workers: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"kbench-{n}-"))
    with Stack(root) as stack:
        repo, center = start_center(stack, root)
        dirs = enroll_all(center, root, n)
        procs: list[Proc] = []
        t = time.monotonic()
        for w in range(workers):
            mine = dirs[w::workers]
            listing = root / f"worker-{w}.json"
            listing.write_text(json.dumps([str(d) for d in mine]))
            proc = Proc(f"worker {w}", [sys.executable, __file__, "--worker", str(listing)],
                        log=root / f"worker-{w}.log", capture=True)  # fmt: skip
            stack.procs.append(proc)
            procs.append(proc.start())
        try:
            for proc in procs:
                proc.wait_line(r"^ready ", timeout=60 + n / 5, what="agents synced and watched")
        except DemoError:
            for proc in procs:
                print(f"--- {proc.name}:\n{proc.tail(30)}", file=sys.stderr)
            raise
        print(f"  {n} agents running in {workers} processes, each with an SDK client, "
              f"in {time.monotonic() - t:.1f} s", flush=True)  # fmt: skip
        lat: list[float] = []
        parts: dict[str, list[float]] = {key: [] for _label, key in BREAKDOWN}
        asked = requests_by_route(center)
        for k in range(pushes + 1):  # the first push warms up and is not counted
            cpu0 = [cpu_seconds(p.pid) for p in (center.proc, *procs)]
            starts = [len(p.lines) for p in procs]
            t0 = push_change(repo, k)
            seq = 2 + k
            seen: dict[str, float] = {}
            got: dict[str, tuple[float, float]] = {}
            probe = functools.partial(all_fired, procs, starts, seq, seen, n, got)
            wait_until(probe, timeout=120, interval=0.05, watch=procs,
                       what=f"{n} callbacks for sequence {seq}")  # fmt: skip
            took = [(at - t0) * 1000 for at in seen.values()]
            cpu = [cpu_seconds(p.pid) - c for p, c in zip((center.proc, *procs), cpu0, strict=True)]
            print(f"    push {k}: all {n} callbacks within {max(took):.0f} ms; CPU s: Center "
                  f"{cpu[0]:.1f}, agent processes {sum(cpu[1:]):.1f}"
                  + (" (warm-up)" if not k else ""), flush=True)  # fmt: skip
            if k:
                lat += took
                # the last "got" lines may trail the callbacks by a moment
                every = functools.partial(all_fired, procs, starts, seq, seen, 2 * n, got)
                wait_until(lambda every=every, got=got: every() or len(got) >= n,
                           timeout=10, interval=0.05, what="every agent's stamps")  # fmt: skip
                for key, values in breakdown(t0, seen, got).items():
                    parts[key] += values
        row = summary(str(n), lat, center.proc.pid, f"({workers} agent processes)")
        print_breakdown(parts)
        after = requests_by_route(center)
        print("     requests to the Center per measured push (incl. the warm-up's tail):")
        for route, count in sorted(after.items(), key=lambda kv: -kv[1]):
            if (d := count - asked.get(route, 0)) > 0:
                print(f"       {d / (pushes + 1):9.0f}  {route}")
        row["breakdown_ms"] = {key: {"p50": round(statistics.median(v), 1),
                                     "p99": round(percentile(v, 99), 1)}
                               for key, v in parts.items() if v}  # fmt: skip
    if not KEEP:
        shutil.rmtree(root, ignore_errors=True)  # kept when a run fails, for its logs
    return row


# -- worker: many real agents + SDK clients in one process ---------------------------------


def worker(listing: Path) -> None:
    from konorkestra import sdk
    from konorkestra.agent.config import AgentConfig
    from konorkestra.agent.daemon import Agent
    from konorkestra.agent.store import fsutil

    dirs = [Path(d) for d in json.loads(listing.read_text())]
    out = threading.Lock()

    def emit(text: str) -> None:
        with out:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    async def main() -> None:
        # Each real agent has its own process and its own default executor (6 threads on
        # 2 cores) for store and signature work; hundreds of agents in one process share
        # one, so give them a pool of the same order as the threads they would have.
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(64, 4 + len(dirs)))
        asyncio.get_running_loop().set_default_executor(pool)
        fsutil._POOL = concurrent.futures.ThreadPoolExecutor(32)  # likewise its fsync pool (4)
        stop = asyncio.Event()
        agents = []
        for d in dirs:
            config = AgentConfig.load(d).with_overrides(socket=d / "agent.sock", allow_uids=None)
            agents.append(Agent.from_data_dir(d, config))
        tasks = [asyncio.create_task(a.run(stop)) for a in agents]
        for a in agents:
            await a.ready.wait()
            stamp(a)

        def committed() -> bool:
            return all(a.served.current(GROUP) is not None for a in agents)

        while not committed():
            await asyncio.sleep(0.1)
        clients = await asyncio.to_thread(watch_all, agents)
        emit(f"ready {len(agents)}")
        await asyncio.Event().wait()  # until SIGTERM (the parent's Stack stops us)
        del clients, tasks

    def stamp(agent: Agent) -> None:
        """Emit ``got <node> <seq> <answer t> <committed t>`` for answers offering GROUP."""
        assert agent.syncer is not None
        handle = agent.syncer.handle
        node = agent.node.node_id

        async def timed(answer: Any) -> int:
            at = time.monotonic()
            committed = await handle(answer)
            seqs = [o.sequence for o in answer.offers if o.group == GROUP]
            if seqs and committed:
                emit(f"got {node} {max(seqs)} {at:.6f} {time.monotonic():.6f}")
            return committed

        agent.syncer.handle = timed  # type: ignore[method-assign]

    def watch_all(agents: list[Agent]) -> list[sdk.Client]:
        clients = []
        for a in agents:
            client = sdk.connect(str(a.socket), name=a.node.node_id)
            node = a.node.node_id

            def fired(new: sdk.Config, old: sdk.Config | None, node: str = node) -> None:
                emit(f"cb {node} {new.sequence} {time.monotonic():.6f}")

            client.get_config(GROUP)
            client.watch(GROUP, fired)
            clients.append(client)
        return clients

    import signal

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--agents", default="1,100,1000", help="comma-separated fleet sizes")
    parser.add_argument("--pushes", type=int, default=None, help="measured pushes (+1 warm-up)")
    parser.add_argument("--workers", type=int, default=2, help="processes for simulated agents")
    parser.add_argument("--keep", action="store_true", help="keep run directories and logs")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(args.worker)
        return 0
    global KEEP
    KEEP = args.keep
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    print(f"B1 push → SDK callback, TLS on, {os.cpu_count()} CPUs", flush=True)
    rows = []
    for n in (int(x) for x in args.agents.split(",")):
        print(f"-- {n} agent(s)", flush=True)
        if n == 1:
            rows.append(run_single(args.pushes or 20))
        else:
            rows.append(run_fleet(n, args.pushes or 3, max(1, min(args.workers, n))))
    print("\nresults (ms from `git push` to the SDK callback):")
    for row in rows:
        print(f"  {row['agents']:>6} agents  p50 {row['p50_ms']:8.1f}  p99 {row['p99_ms']:8.1f}  "
              f"max {row['max_ms']:8.1f}  Center RSS {row['center_rss_mib']} MiB "
              f"(peak {row['center_peak_rss_mib']})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
