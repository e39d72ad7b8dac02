"""How much memory does one idle agent hold? (issue 17, "A light agent")

Usage::

    .venv/bin/python bench/agent_rss.py                 # 3 runs: VmRSS and VmHWM, range
    .venv/bin/python bench/agent_rss.py --runs 1 --imports

Each run is real: a ``konorkestra center`` process (TLS, its own CA) on a copy
of ``examples/config-repo``, a join token made through the API, ``konorkestra
agent join`` and then ``konorkestra agent run`` as a process of its own. The
run waits (conditions with deadlines, no fixed sleeps) until the agent has
committed the demo Release of ``checkout``, its status file says every report
was sent and the sync loop is parked in its long-poll, and its RSS has not
moved for :data:`STEADY_FOR` seconds; then it reads ``VmRSS`` and ``VmHWM``
from ``/proc/<pid>/status``, and its private (``Private_*``) and proportional
(``Pss``) resident memory from ``/proc/<pid>/smaps_rollup``: VmRSS also counts
the pages of shared libraries (libpython, OpenSSL, cryptography's and
jsonschema-rs's Rust code) that every other process using them shares.

``--imports`` adds, in the last run, a second agent started through a wrapper
that writes its ``sys.modules`` (in import order) when it gets SIGUSR1; once
that agent is idle too, a fresh interpreter imports exactly that list with a
hook around every module's execution and prints what each top-level package
cost by itself (RSS growth during its own modules, not counting the modules
of other packages they import), largest first.

Target (issue 17): under 40 MiB idle (an etcd member: 24 MiB). Measured on 2 cores,
3 runs each (VmRSS / private): ``checkout`` 61.6-61.7 / 32.7 MiB before, 54.2-54.3 /
25.7-25.8 MiB after httpx's CLI was deferred and Python jsonschema left out;
``payments`` (no data schema, so no jsonschema-rs) 56.1-56.2 / 30.1-30.2 MiB before,
44.7 / 24.8-24.9 MiB after. Most of what is left is shared library text that
VmRSS counts whole: jsonschema-rs 8.8 MiB, cryptography's Rust module (with its
own OpenSSL) 8.5 MiB, libpython 5.1 MiB, the system libcrypto 4.0 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from propagation import rss_kib  # bench/ is this script's directory

from konorkestra.demo import ConfigRepo, Stack, examples_dir
from konorkestra.demo.procs import wait_until
from konorkestra.demo.stack import AgentHandle, CenterHandle

GROUP = "checkout"
"""The demo Group (ConfigSet ``checkout-api`` has a data schema); ``payments`` has none."""
STEADY_FOR = 1.5
"""Seconds the agent's RSS must stay the same before it counts as idle."""

_DUMP_WRAPPER = """
import signal, sys
_path = sys.argv.pop(1)
def _dump(*_):
    with open(_path, "w") as f:
        f.write("\\n".join(sys.modules))
signal.signal(signal.SIGUSR1, _dump)
sys.argv[0] = "konorkestra"
from konorkestra.cli.daemon import main
main()
"""

_MEASURE = r"""
import importlib, sys
from importlib.abc import MetaPathFinder

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

costs, stack = {}, []

class Measured:
    def __init__(self, loader):
        self._loader = loader
    def __getattr__(self, name):
        return getattr(self._loader, name)
    def create_module(self, spec):
        return self._loader.create_module(spec)
    def exec_module(self, module):
        stack.append(0)
        before = rss()
        try:
            self._loader.exec_module(module)
        finally:
            total = rss() - before
            children = stack.pop()
            top = module.__name__.split(".")[0]
            costs[top] = costs.get(top, 0) + total - children
            if stack:
                stack[-1] += total

class Finder(MetaPathFinder):
    def find_spec(self, name, path, target=None):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = Measured(spec.loader)
                return spec
        return None

start = rss()
sys.meta_path.insert(0, Finder())
for name in sys.argv[1:]:
    if name not in sys.modules:
        try:
            importlib.import_module(name)
        except Exception:
            pass
print(start, rss() - start)
for top, kib in sorted(costs.items(), key=lambda kv: -kv[1]):
    print(top, kib)
"""


def private_pss_kib(pid: int) -> tuple[int, int]:
    """(private, proportional) resident KiB of ``pid``: what it alone holds, and its share."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        fields[key] = int(value.split()[0])
    return fields["Private_Clean"] + fields["Private_Dirty"], fields["Pss"]


def idle(agent: AgentHandle) -> bool:
    """Committed ``checkout``, every report sent, sync parked (long-poll or stream)."""
    try:
        status: dict[str, Any] = json.loads((agent.data / "status.json").read_text())
    except (OSError, ValueError):
        return False
    group = (status.get("groups") or {}).get(GROUP)
    sync = status.get("sync") or {}
    reports = status.get("reports") or {}
    return bool(
        status.get("running")
        and group
        and group.get("release")
        and sync.get("commits", 0) >= 1
        and sync.get("mode") in ("long-poll", "stream")
        and not sync.get("last_error")
        and reports.get("sent", 0) >= 1
        and reports.get("pending") == 0
    )


def wait_idle(agent: AgentHandle, timeout: float = 60.0) -> tuple[int, int]:
    """Wait for :func:`idle`, then for an RSS unchanged for :data:`STEADY_FOR` s; (RSS, HWM)."""
    wait_until(lambda: idle(agent), timeout=timeout, what=f"{agent.name} idle",
               watch=[agent.proc])  # fmt: skip
    seen: dict[str, Any] = {"rss": -1, "since": 0.0}

    def steady() -> tuple[int, int] | None:
        rss, hwm = rss_kib(agent.proc.pid)
        now = time.monotonic()
        if rss != seen["rss"]:
            seen.update(rss=rss, since=now)
            return None
        return (rss, hwm) if now - seen["since"] >= STEADY_FOR else None

    return wait_until(steady, timeout=timeout, what=f"{agent.name}'s RSS to settle",
                      watch=[agent.proc], interval=0.1)  # fmt: skip


def start_agent(stack: Stack, center: CenterHandle, name: str, dump: Path | None) -> AgentHandle:
    agent = stack.agent(name)
    agent.join(center, center.create_token([GROUP]))
    if dump is not None:  # the same command through the module-dumping wrapper
        argv = agent.proc.argv
        agent.proc.argv = [sys.executable, "-c", _DUMP_WRAPPER, str(dump), *argv[-6:]]
    agent.proc.argv += ["--log-level", "warning"]
    return agent.start()


def one_run(k: int, imports: bool) -> tuple[int, int, int, list[str]]:
    root = Path(tempfile.mkdtemp(prefix="kbench-rss-"))
    modules: list[str] = []
    try:
        with Stack(root) as stack:
            repo = ConfigRepo.create(root, seed=examples_dir() / "config-repo")
            repo.push()
            center = stack.center(repo.bare, "--log-level", "warning")
            center.wait_commit(repo.head())
            agent = start_agent(stack, center, "node-1", None)
            rss, hwm = wait_idle(agent)
            private, pss = private_pss_kib(agent.proc.pid)
            print(
                f"  run {k}: idle agent VmRSS {rss / 1024:.1f} MiB, VmHWM {hwm / 1024:.1f} MiB "
                f"(private {private / 1024:.1f} MiB, PSS {pss / 1024:.1f} MiB)",
                flush=True,
            )
            if imports:
                dump = root / "modules.txt"
                other = start_agent(stack, center, "node-2", dump)
                wait_idle(other)
                os.kill(other.proc.pid, signal.SIGUSR1)
                wait_until(lambda: dump.exists() and dump.stat().st_size > 0, timeout=10,
                           what="the module list", watch=[other.proc])  # fmt: skip
                modules = dump.read_text().split("\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rss, hwm, private, modules


def import_costs(modules: list[str]) -> None:
    """Print each top-level package's own RSS cost when ``modules`` are imported in order."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *modules], capture_output=True,
                         text=True, check=True).stdout.split("\n")  # fmt: skip
    start, total = (int(x) for x in out[0].split())
    print(f"\n{len(modules)} modules in the idle agent; a bare interpreter holds "
          f"{start / 1024:.1f} MiB, importing them adds {total / 1024:.1f} MiB:")  # fmt: skip
    for line in out[1:]:
        if line:
            top, kib = line.split()
            if abs(int(kib)) >= 128:
                print(f"  {top:<24} {int(kib) / 1024:6.1f} MiB")


def main(argv: list[str] | None = None) -> int:
    global GROUP
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3, help="independent runs (default 3)")
    parser.add_argument("--imports", action="store_true", help="also break RSS down by import")
    parser.add_argument("--group", default=GROUP, help="the Group the agent joins (default "
                        "checkout, whose data has a schema; payments has none)")  # fmt: skip
    args = parser.parse_args(argv)
    GROUP = args.group
    print(f"idle agent RSS, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}", flush=True)
    results = [one_run(k + 1, args.imports and k == args.runs - 1) for k in range(args.runs)]
    rss, hwm, private = ([r[i] / 1024 for r in results] for i in range(3))
    print(f"VmRSS {min(rss):.1f}-{max(rss):.1f} MiB, VmHWM {min(hwm):.1f}-{max(hwm):.1f} MiB, "
          f"private {min(private):.1f}-{max(private):.1f} MiB over {args.runs} run(s) "
          f"(group {GROUP}); target VmRSS < 40 MiB")  # fmt: skip
    if args.imports:
        import_costs(results[-1][3])
    return 0


if __name__ == "__main__":
    sys.exit(main())
