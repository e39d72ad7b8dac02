"""Fan-out: N parked agents on one Center, publish, time until all are notified; etcd beside it.

Usage::

    .venv/bin/python bench/fanout.py                          # --n 1000,3000,10000, poll, etcd both
    .venv/bin/python bench/fanout.py --n 1000 --publishes 5 --idle-seconds 20
    .venv/bin/python bench/fanout.py --n 3000 --mode both --etcd-tls on --json out.json
    .venv/bin/python bench/fanout.py --n 20 --publishes 1 --idle-seconds 1 --etcd-tls skip

What runs, all on loopback, in the same run:

* **ours** — a real ``konorkestra center`` (TLS with its own CA, SQLite store,
  ingest by watching a bare Git repo) serving a fleet of N enrolled nodes
  (:mod:`fanout_fleet`: join tokens and ``POST /v1/enroll`` through the API, cached
  in ``--fleet-dir``; every node has its own certificate from the Center's CA, all for
  one shared client key). ONE client process (:mod:`fanout_worker`) holds N TLS
  connections, one per node, each presenting its node's certificate and sending
  exactly the agent's request: ``--mode poll`` the long-poll ``GET
  /v1/agent/desired?have=checkout:<seq>&wait=55.0``, sent again as soon as it is
  answered; ``--mode stream`` ``GET /v1/agent/stream?have=...`` (ndjson, one
  request per connection). A publish is a ``git push`` of a new ``checkout-api``
  version to the repo the Center watches (the Group is on the all-at-once Policy):
  ingest, validation, signing, the rollout's start and the fan-out are all inside.
* **etcd** — a throwaway ``etcd`` (Debian ``etcd-server``) on free loopback ports
  (never the system one on 2379), with TLS and client certificate auth
  (``--etcd-tls on``), plain (``off``) or both; N watchers on one key in one client
  process through etcd's HTTP/JSON gateway (``POST /v3/watch``, a stream over
  HTTP/1.1); a publish is a put (``POST /v3/kv/put``). Skipped, with a line
  saying so, when ``etcd`` is not installed.

Setup: the fleet of N nodes is built once per N in ``--fleet-dir`` (default
``.cache/fanout``, gitignored; 10,000 nodes took 3.7 s of join tokens and 72 s of
enrollment) and reused while its certificates have 2 h left; one run at a time
per fleet (a lock). Clients connect from ``--sources`` loopback addresses
(127.0.1.x), 64 handshakes at a time; every process raises RLIMIT_NOFILE to its
hard limit (N connections each). In poll mode, before the idle window and each
publish the bench waits until the Center's ``konorkestra_center_parked_requests``
gauge shows all N parked.

Numbers, per system and N (one fresh server process each):

* ``p50/p99/max`` — publish → notified, in ms: from t0, taken just before the
  ``git push`` (etcd: before the put request), to the arrival of the answer that
  carries the new Release at each client (stamped when its last byte is read,
  CLOCK_MONOTONIC in both processes), over every (client, publish) pair of
  ``--publishes`` publishes; one warm-up publish first is not counted. ``first``
  is the median over publishes of the first client's (the pipeline before the
  fan-out: for ours the push, ingest, signing and the rollout's start).
* ``RSS`` — the server's resident memory with N parked (after the idle window).
* ``idle CPU`` — the server's CPU time over ``--idle-seconds`` (default 60) with
  N parked and nothing published, as % of one core. Ours in poll mode includes
  the re-polls the agents make every 55 s.
* ``client CPU`` — the client process's CPU over the same idle window, and during
  the publishes as % of one core over the fan-out's wall time (``fanout``): far
  from 100 % means the client was not the bottleneck. Its RSS is printed too.
* per publish (progress lines): first / p50 / all notified, the server's CPU
  seconds over the publish, and for ours how long ``git push`` took and the
  Center's own time ingesting the commit and deciding rollouts (the sums of its
  ``/metrics`` histograms), so a slow "first notified" can be told from a slow
  fan-out.

Several Centers on PostgreSQL come later: :func:`fanout_fleet.start_centers` is
the one place that starts "the Centers" and returns their handles.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout_etcd import EtcdServer, etcd_binary
from fanout_fleet import fleet_in_use, publish, start_centers, timings, wait_parked
from fanout_report import Row, cpu_seconds, print_table, row_of, rss_mib

from konorkestra.demo import DemoError, Stack

ETCD_KEY = b"/bench/fanout"


class Worker:
    """The client process: N parked clients; commands on its stdin, answers on its stdout."""

    def __init__(self, spec: dict[str, Any], tmp: Path) -> None:
        path = tmp / f"spec-{spec['kind']}-{spec['n']}.json"
        path.write_text(json.dumps(spec))
        here = Path(__file__).resolve().parent
        self.log = tmp / f"worker-{spec['kind']}-{spec['n']}.log"
        with open(self.log, "ab") as err:
            self.popen = subprocess.Popen(
                [sys.executable, str(here / "fanout_worker.py"), str(path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line.strip())
        self.lines.put("")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def expect(self, timeout: float) -> list[str]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise DemoError(f"the client process said nothing in {timeout:g} s") from None
        if not line:
            raise DemoError(f"the client process exited: {self.log.read_text()[-2000:]}")
        if line.startswith("fail "):
            raise DemoError(f"the clients failed: {line}")
        return line.split(" ", 2)

    def send(self, command: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(command + "\n")
        self.popen.stdin.flush()

    def close(self) -> None:
        if self.popen.poll() is None:
            try:
                self.send("quit")
                self.popen.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.popen.kill()
                self.popen.wait()


def measure(
    label: str, server_pid: int, worker: Worker, n: int, args: argparse.Namespace,
    do_publish: Callable[[int], float], settle: Callable[[], None],
    probe: Callable[[], dict[str, float]] = dict,
) -> Row:  # fmt: skip
    """Idle window, then warm-up + ``--publishes`` publishes; one :class:`Row`."""
    _, ready_n, seq = worker.expect(timeout=120 + n / 20)
    print(f"  {label}: {ready_n} clients connected, first answer at sequence {seq}", flush=True)
    settle()
    cpu0 = (cpu_seconds(server_pid), cpu_seconds(worker.pid))
    time.sleep(args.idle_seconds)  # the idle window itself: nothing to wait for
    idle = [(cpu_seconds(p) - c) / args.idle_seconds * 100 for p, c in
            zip((server_pid, worker.pid), cpu0, strict=True)]  # fmt: skip
    rss = (rss_mib(server_pid), rss_mib(worker.pid))
    lat: list[float] = []
    firsts: list[float] = []
    busy: list[float] = []
    target = int(seq)
    for k in range(args.publishes + 1):
        settle()
        target += 1
        m0, s0, c0 = probe(), cpu_seconds(server_pid), cpu_seconds(worker.pid)
        t0 = do_publish(target)
        worker.send(f"wait {target} {args.timeout}")
        _, _, stamps = worker.expect(timeout=args.timeout + 30)
        took = [(at - t0) * 1000 for at in json.loads(stamps)]
        server = cpu_seconds(server_pid) - s0
        busy.append((cpu_seconds(worker.pid) - c0) / (max(took) / 1000) * 100)
        inside = "".join(f", {k} {(v - m0[k]) * 1000:.0f} ms" for k, v in probe().items())
        print(f"    publish {k}: first notified in {min(took):6.0f} ms, p50 "
              f"{sorted(took)[len(took) // 2]:6.0f} ms, all {n} in {max(took):6.0f} ms; "
              f"server CPU {server:.1f} s{inside}; client CPU {busy[-1]:.0f} % "
              f"of the fan-out{' (warm-up)' if not k else ''}", flush=True)  # fmt: skip
        if k:
            lat += took
            firsts.append(min(took))
    return row_of(label, n, lat, firsts, rss, idle, busy[1:], args.idle_seconds)


def run_ours(n: int, mode: str, args: argparse.Namespace, tmp: Path) -> Row:
    with fleet_in_use(args.fleet_dir, n) as fleet, Stack(fleet.root) as stack:
        [center] = start_centers(stack, fleet)
        host, port = center.url.removeprefix("https://").rsplit(":", 1)
        spec = {
            "kind": mode, "n": n, "host": host, "port": int(port), "sources": args.sources,
            "ca": str(center.ca_file), "certs": list(fleet.certs), "key": str(fleet.key),
        }  # fmt: skip
        worker = Worker(spec, tmp)
        try:
            settle = (lambda: wait_parked(center, n)) if mode == "poll" else (lambda: None)
            pushes: list[float] = []

            def push(_target: int) -> float:
                t0 = publish(fleet)
                pushes.append(time.monotonic() - t0)  # `git push` itself, inside the latency
                return t0

            return measure(f"ours ({mode})", center.proc.pid, worker, n, args, push, settle,
                           lambda: {"git push": sum(pushes), **timings(center)})  # fmt: skip
        finally:
            worker.close()


def run_etcd(n: int, tls: bool, args: argparse.Namespace, tmp: Path) -> Row:
    label = f"etcd ({'TLS+client auth' if tls else 'plain'})"
    with EtcdServer(tmp / f"etcd-{n}-{'tls' if tls else 'plain'}", tls=tls) as etcd:
        spec = {"kind": "etcd", "n": n, "host": "127.0.0.1", "port": etcd.port,
                "sources": args.sources, **etcd.client_files()}  # fmt: skip
        worker = Worker(spec, tmp)

        def put(target: int) -> float:
            t0 = time.monotonic()
            etcd.put(ETCD_KEY, str(target).encode())
            return t0

        try:
            return measure(label, etcd.proc.pid, worker, n, args, put, lambda: None)
        finally:
            worker.close()


def code_version() -> str:
    """The commit the Center runs from, ``+dirty`` when ``konorkestra/`` has local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "konorkestra"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", default="1000,3000,10000", help="comma-separated client counts")
    parser.add_argument("--publishes", type=int, default=3, help="measured publishes (+1 warm-up)")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="idle CPU window")
    parser.add_argument("--mode", choices=("poll", "stream", "both"), default="poll")
    parser.add_argument("--etcd-tls", choices=("both", "on", "off", "skip"), default="both")
    parser.add_argument("--fleet-dir", type=Path, default=Path(".cache/fanout"),
                        help="where enrolled fleets are kept between runs")  # fmt: skip
    parser.add_argument("--sources", type=int, default=40, help="loopback source addresses")
    parser.add_argument("--timeout", type=float, default=300.0, help="per publish, seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    modes = ("poll", "stream") if args.mode == "both" else (args.mode,)
    tls_modes = {"both": (True, False), "on": (True,), "off": (False,), "skip": ()}[args.etcd_tls]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"fan-out bench: code {code_version()}, {os.cpu_count()} CPUs, load {load}, idle window "
          f"{args.idle_seconds:g} s, {args.publishes} publishes (+1 warm-up)",
          flush=True)  # fmt: skip
    if tls_modes and etcd_binary() is None:
        print("etcd: skipped, `etcd` is not installed (Debian package etcd-server)", flush=True)
        tls_modes = ()
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="kbench-fanout-"))
    try:
        for n in (int(x) for x in args.n.split(",")):
            print(f"-- N = {n}", flush=True)
            rows += [run_ours(n, mode, args, tmp) for mode in modes]
            rows += [run_etcd(n, tls, args, tmp) for tls in tls_modes]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
