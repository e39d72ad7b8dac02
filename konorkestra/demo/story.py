"""The scripted end-to-end demo that ``konorkestra demo`` runs.

Example::

    console = Console()
    code = run_demo(console, keep=False)     # 0: every step passed; 1: one failed

Steps: a Git config repo from ``examples/config-repo`` → a Center → a join
token → an Agent (join, run) → the sample SDK app → a pushed change the app
applies (latency measured from ``git push`` to the app's output) → the
Center's view (``konorctl releases``, ``konorctl nodes show``) → an invalid
change the Center refuses while the app stays on the previous value.

Invariants:

* Each step either prints ``✓`` with a short excerpt, or ``✗`` with why, the
  tail of the relevant process logs, and the demo exits 1. There are no fixed
  sleeps: every wait is a condition with a deadline.
* Every process started is stopped before :func:`run_demo` returns (also on
  Ctrl-C); the temporary directory is removed unless a step failed (then its
  logs are kept and their path printed).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.markup import escape

from konorkestra.demo import edits
from konorkestra.demo.gitrepo import ConfigRepo, git
from konorkestra.demo.procs import DemoError, Proc, ProcessDied, wait_until
from konorkestra.demo.stack import AgentHandle, AppHandle, CenterHandle, Stack, examples_dir

GROUP = "checkout"
TOTAL_STEPS = 8


class StepFailed(Exception):
    """Raised by :class:`Steps` after it printed the failure."""


def _app_event(line: str) -> dict[str, Any]:
    """``applied release=R sequence=N config={...}`` -> its fields (config decoded)."""
    fields: dict[str, Any] = {"event": line.split(" ", 1)[0]}
    head, sep, cfg = line.partition(" config=")
    for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', head):
        fields[key] = value.strip('"')
    if sep:
        with contextlib.suppress(ValueError):
            fields["config"] = json.loads(cfg)
    return fields


def _timeout_ms(event: dict[str, Any]) -> object:
    return event.get("config", {}).get("checkout-api", {}).get("timeout_ms", "?")


def _excerpt(text: str, lines: int = 12) -> str:
    out = [ln.rstrip() for ln in text.rstrip().splitlines() if ln.strip()]
    if len(out) > lines:
        out = [*out[:lines], f"… ({len(out) - lines} more lines)"]
    return "\n".join(out)


class Steps:
    """Numbered steps with ✓/✗, a spinner on a terminal, and log tails on failure."""

    def __init__(self, console: Console, total: int) -> None:
        self.console, self.total, self.n = console, total, 0
        self.failed: str | None = None

    @contextlib.contextmanager
    def step(self, title: str, *, logs: Sequence[Proc] = ()) -> Iterator[list[str]]:
        self.n += 1
        label = f"[bold]{self.n}/{self.total}[/] {escape(title)}"
        details: list[str] = []
        started = time.monotonic()
        status = self.console.status(label) if self.console.is_terminal else None
        try:
            if status is not None:
                status.start()
            try:
                yield details
            finally:
                if status is not None:
                    status.stop()
        except (DemoError, OSError) as exc:
            self.failed = f"step {self.n} ({title})"
            self.console.print(f"[red]✗[/] {label}")
            for line in details:
                self.console.print(f"    {line}", highlight=False, soft_wrap=True)
            self.console.print(f"    [red]{escape(str(exc))}[/]", highlight=False, soft_wrap=True)
            dead = [exc.proc] if isinstance(exc, ProcessDied) else []
            for proc in [*dead, *(p for p in logs if p not in dead)]:
                tail = proc.tail(20)
                if tail:
                    self.console.print(f"    [bold]last lines of {proc.name}[/] ({proc.log}):")
                    self.console.print(
                        "      " + escape(tail).replace("\n", "\n      "),
                        style="dim", highlight=False, soft_wrap=True,
                    )  # fmt: skip
            raise StepFailed(str(exc)) from None
        took = time.monotonic() - started
        self.console.print(f"[green]✓[/] {label} [dim]({took:.1f} s)[/]", soft_wrap=True)
        for line in details:
            self.console.print(f"    {line}", highlight=False, soft_wrap=True)


def _indent(text: str) -> str:
    return escape(text).replace("\n", "\n    ")


class Demo:
    """One run of the demo in ``root``."""

    def __init__(self, console: Console, root: Path) -> None:
        self.console, self.root = console, root
        self.steps = Steps(console, TOTAL_STEPS)
        self.stack = Stack(root)
        self.repo: ConfigRepo | None = None
        self.center: CenterHandle | None = None
        self.agent: AgentHandle | None = None
        self.app: AppHandle | None = None
        self.latency_ms: float | None = None
        self.last_event: dict[str, Any] = {}
        self.columns = max(100, console.width - 4)

    def _procs(self) -> list[Proc]:
        return [h.proc for h in (self.center, self.agent, self.app) if h is not None]

    def run(self) -> None:
        s = self.steps
        with s.step("Create a Git config repo from examples/config-repo") as out:
            self.repo = repo = ConfigRepo.create(self.root, seed=examples_dir() / "config-repo")
            git(repo.work, "config", "user.name", "Demo Operator")  # for --keep: commit by hand
            git(repo.work, "config", "user.email", "demo@konorkestra.invalid")
            repo.push()
            out.append(f"bare repo {repo.bare}, work clone {repo.work}")
            out.append(f"pushed {repo.head()[:12]} 'Initial config from examples/config-repo'")

        with s.step("Start the Center (`konorkestra center`)", logs=self._procs()) as out:
            self.center = center = self.stack.center(repo.bare, "--poll", "5")
            out.append(f"serving {center.url} (pid {center.proc.pid}, TLS "
                       f"{'on' if center.url.startswith('https') else 'off'})")  # fmt: skip
            commit = center.wait_commit(repo.head())
            if commit["status"] != "accepted":
                raise DemoError(f"the initial commit was {commit['status']}: {commit}")
            rels = ", ".join(f"{r['group']} #{r['sequence']}" for r in commit["releases"])
            out.append(f"ingested {repo.head()[:12]}: accepted, signed releases: {rels}")

        with s.step("Create a join token (`konorctl token create`)", logs=[center.proc]) as out:
            grant = center.create_token([GROUP, "payments"])
            out.append(f"token {grant.token.split('.')[0]}.…  groups {', '.join(grant.groups)}  "
                       f"single use; CA pin {grant.ca_pin[:23]}…")  # fmt: skip

        self.agent = agent = self.stack.agent("node-1")
        with s.step("Join and run an Agent (`konorkestra agent join|run`)",
                    logs=[center.proc, agent.proc]) as out:  # fmt: skip
            joined = agent.join(center, grant)
            out.append(_indent(joined.splitlines()[0] if joined else f"joined {agent.node_id}"))
            agent.start()
            agent.wait_serving()
            rel = agent.wait_committed(GROUP, 1)
            out.append(f"agent pid {agent.proc.pid} serving {agent.socket}")
            out.append(f"verified and committed {rel['release']} (sequence {rel['sequence']})")

        with s.step("Start the sample app (examples/apps/checkout_app.py, Python SDK)",
                    logs=[agent.proc]) as out:  # fmt: skip
            self.app = app = self.stack.app(agent, GROUP)
            logs_app = [app.proc, agent.proc]
            _, line = app.proc.wait_line(r"^start ", timeout=20, what="the app's start line")
            ev = self.last_event = _app_event(line.text)
            out.append(f"app pid {app.proc.pid}: {escape(line.text[:100])}…")
            out.append(f"running on {ev.get('release')}: checkout-api.timeout_ms = "
                       f"[bold]{_timeout_ms(ev)}[/]")  # fmt: skip

        with s.step("Change config with git: checkout-api v3, timeout_ms 400 → 650, push",
                    logs=[*logs_app, center.proc]) as out:  # fmt: skip
            repo.write(edits.API_FILE, edits.checkout_api(3, timeout_ms=650, max_connections=1024),
                       append=True)  # fmt: skip
            sha = repo.commit("checkout-api v3: timeout 650 ms, 1024 connections")
            start = len(app.proc.lines)
            pushed_at = repo.push()
            out.append(f"$ git commit -m 'checkout-api v3: …' && git push   → {sha[:12]}")
            _, line = app.proc.wait_line(r"^(applied|failed) ", timeout=30, start=start,
                                         what="the app to react to the push")  # fmt: skip
            ev = self.last_event = _app_event(line.text)
            if ev["event"] != "applied" or _timeout_ms(ev) != 650:
                raise DemoError(f"the app did not apply timeout_ms=650: {line.text[:200]}")
            self.latency_ms = (line.at - pushed_at) * 1000
            out.append(f"app: applied {ev.get('release')}: checkout-api.timeout_ms = [bold]650[/]")
            out.append(f"[bold green]push → app: {self.latency_ms:.0f} ms[/]")

        with s.step("The Center's view: the release, and the process that applied it",
                    logs=[center.proc, agent.proc]) as out:  # fmt: skip
            release_id = str(ev.get("release"))
            self._wait_ack(release_id, "applied")
            table = center.konorctl("releases", "--group", GROUP, "--limit", "2",
                                    columns=self.columns).stdout  # fmt: skip
            out.append(f"$ konorctl releases --group {GROUP} --limit 2\n    " + _indent(
                _excerpt(table, 12)))  # fmt: skip
            shown = center.konorctl("nodes", "show", agent.node_id).stdout
            keep = [ln for ln in shown.splitlines()
                    if ln.startswith(("id:", "name:", "group ")) or "pid " in ln]  # fmt: skip
            out.append(f"$ konorctl nodes show {agent.node_id}\n    " + _indent("\n".join(keep)))

        with s.step("Push an invalid change (timeout_ms: 5 < minimum 10): refused",
                    logs=[center.proc, *logs_app]) as out:  # fmt: skip
            before = center.get("/v1/releases", group=GROUP, limit=1)["releases"][0]
            repo.write(edits.API_FILE, edits.checkout_api(4, timeout_ms=5), append=True)
            bad = repo.commit("checkout-api v4: timeout 5 ms (too low)")
            start = len(app.proc.lines)
            repo.push()
            commit = center.wait_commit(bad)
            if commit["status"] == "accepted":
                raise DemoError("the Center accepted an invalid commit")
            table = center.konorctl("commits", "--limit", "3", columns=self.columns).stdout
            out.append("$ konorctl commits --limit 3\n    " + _indent(_excerpt(table, 10)))
            for d in commit.get("diagnostics", [])[:2]:
                where = ":".join(str(d[k]) for k in ("file", "line") if d.get(k))
                out.append(
                    f"[red]{escape(where)}: {escape(d['message'])}[/] " + escape(f"[{d['code']}]")
                )
            after = center.get("/v1/releases", group=GROUP, limit=1)["releases"][0]
            if after["id"] != before["id"]:
                raise DemoError(f"a release was created from a refused commit: {after['id']}")
            app.proc.check()
            if len(app.proc.lines) != start:
                raise DemoError(f"the app changed: {app.proc.lines[-1].text[:200]}")
            held = agent.committed(GROUP) or {}
            out.append(f"no release; agent still serves {held.get('release')}, app (pid "
                       f"{app.proc.pid}) still running on timeout_ms = [bold]"
                       f"{_timeout_ms(self.last_event)}[/]")  # fmt: skip

    def _wait_ack(self, release_id: str, status: str) -> dict[str, Any]:
        """Wait until the Center shows the app's process acked ``release_id`` with ``status``."""
        assert self.center is not None and self.agent is not None and self.app is not None
        center, node, pid = self.center, self.agent.node_id, self.app.proc.pid

        def acked() -> dict[str, Any] | None:
            ack = center.ack(node, pid, release_id)
            return center.process(node, pid) if ack and ack.get("status") == status else None

        return wait_until(
            acked, timeout=20, interval=0.1, what=f"the Center to show pid {pid}'s ack of "
            f"{release_id}", watch=[center.proc, self.agent.proc],
        )  # fmt: skip

    def keep_running(self) -> None:
        """Print how to play further, then wait for Ctrl-C (or SIGTERM)."""
        assert self.center and self.agent and self.app and self.repo
        env = self.center.konorctl_env()
        env.pop("KONORCTL_CONFIG", None)
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        c = self.console
        c.rule("[bold]Still running[/] (Ctrl-C stops everything and cleans up)")
        c.print(f"Center      {self.center.url}   (log {self.center.proc.log})", highlight=False)
        c.print(
            f"Agent       node {self.agent.node_id}, socket {self.agent.socket}", highlight=False
        )
        c.print(f"App         pid {self.app.proc.pid}   (log {self.app.proc.log})", highlight=False)
        c.print(f"Config repo {self.repo.work}  → pushes to {self.repo.bare}\n", highlight=False)
        c.print("Try:", highlight=False)
        for cmd in (
            f"export {exports}",
            "konorctl releases; konorctl commits; konorctl nodes",
            f"konorctl nodes show {self.agent.node_id}",
            f"tail -f {self.app.proc.log}",
            f"cd {self.repo.work} && $EDITOR {edits.API_FILE}   # add a version 5",
            "git commit -am 'my change' && git push",
            f"KONORKESTRA_SOCKET={self.agent.socket} python "
            f"{examples_dir() / 'apps' / 'checkout_app.py'} --name second-app",
            f"konorkestra agent status --data {self.agent.data}",
        ):
            c.print(f"  {escape(cmd)}", highlight=False, soft_wrap=True)
        stop = threading.Event()

        def on_term(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = signal.signal(signal.SIGTERM, on_term)
        try:
            while not stop.wait(1.0):
                for proc in self._procs():
                    if not proc.alive:
                        c.print(f"[red]✗[/] {proc.name} exited ({proc.returncode}); stopping")
                        c.print(escape(proc.tail(20)), style="dim", soft_wrap=True)
                        return
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)


def run_demo(console: Console, *, keep: bool = False) -> int:
    """Run the demo; 0 when every step passed, 1 otherwise. Cleans up in every case."""
    root = Path(tempfile.mkdtemp(prefix="konorkestra-demo-"))
    demo = Demo(console, root)
    started = time.monotonic()
    console.rule("[bold]Konorkestra demo[/]: Git commit → signed release → agent → live app")
    failed = False
    try:
        demo.run()
        took = time.monotonic() - started
        console.print(
            f"\n[bold green]✓ Demo passed[/] in {took:.1f} s: push → app "
            f"{demo.latency_ms:.0f} ms; the invalid commit was refused and the app kept "
            f"running on timeout_ms = {_timeout_ms(demo.last_event)}.",
            highlight=False,
        )
        if keep:
            demo.keep_running()
    except StepFailed:
        failed = True
        console.print(f"\n[bold red]✗ Demo failed[/] at {demo.steps.failed}; logs kept in {root}")
    except KeyboardInterrupt:
        failed = True
        console.print("\ninterrupted; cleaning up")
    finally:
        with console.status("stopping processes") if console.is_terminal else _null():
            demo.stack.close()
        if not failed:
            shutil.rmtree(root, ignore_errors=True)
    if not failed:
        console.print("[dim]stopped every process and removed the temporary directory[/]")
    return 1 if failed else 0


@contextlib.contextmanager
def _null() -> Iterator[None]:
    yield
