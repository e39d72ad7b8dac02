"""The scripted end-to-end demo that ``konorkestra demo`` runs: a progressive rollout.

Example::

    console = Console()
    code = run_demo(console, keep=False)     # 0: every step passed; 1: one failed

Steps: a Git config repo from ``examples/config-repo`` (the canary Policy's
bakes shortened to seconds) → a Center → five nodes, each an Agent (own join
token) with the sample SDK app → a pushed change that reaches the canary node
only (push → app latency measured) → its bake, guards watching, then the
rollout waits for approval → the demo approves: the next wave, then the last →
an invalid change the Center refuses → a bad version whose reload fails in the
canary's app: a guard breaches and the Center rolls back by itself → who saw
which Release, from the Center's record of every process
(:mod:`konorkestra.demo.rollout_story`). The Center's dashboard (``/ui/``) is up
throughout: its URL is printed, and ``--keep`` prints an operator token to log in.

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
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.markup import escape

from konorkestra.demo import edits
from konorkestra.demo.fleet import DemoNode, join_nodes, start_apps
from konorkestra.demo.gitrepo import ConfigRepo, git
from konorkestra.demo.procs import DemoError, Proc, wait_until
from konorkestra.demo.rollout_story import RolloutStory
from konorkestra.demo.rollout_view import policy_text
from konorkestra.demo.scene import BAKE, GROUP
from konorkestra.demo.stack import CenterHandle, Stack, examples_dir
from konorkestra.demo.steps import StepFailed, Steps, app_event, excerpt, indent, short, timeout_ms
from konorkestra.demo.whosaw import Witness

NODES = ("node-1", "node-2", "node-3", "node-4", "node-5")
TOTAL_STEPS = 11
APP = "checkout-app"
DASHBOARD_TOKEN = "demo-dashboard"
"""The name of the API token ``--keep`` makes for logging in to the dashboard."""


class Demo:
    """One run of the demo in ``root``."""

    def __init__(self, console: Console, root: Path) -> None:
        self.console, self.root = console, root
        self.steps = Steps(console, TOTAL_STEPS)
        self.stack = Stack(root)
        self.repo: ConfigRepo | None = None
        self.center: CenterHandle | None = None
        self.nodes: list[DemoNode] = []
        self.story: RolloutStory | None = None
        self.columns = max(100, console.width - 4)

    def _procs(self) -> list[Proc]:
        return list(self.stack.procs)

    def run(self) -> None:
        s = self.steps
        with s.step("Create a Git config repo from examples/config-repo") as out:
            self.repo = repo = ConfigRepo.create(self.root, seed=examples_dir() / "config-repo")
            git(repo.work, "config", "user.name", "Demo Operator")  # for --keep: commit by hand
            git(repo.work, "config", "user.email", "demo@konorkestra.invalid")
            policy, old = edits.shorten_bakes(
                (repo.work / edits.POLICY_FILE).read_text(), BAKE
            )  # fmt: skip
            repo.write(edits.POLICY_FILE, policy)
            git(repo.work, "add", "-A")  # one commit, so the Group starts with one Release
            git(repo.work, "commit", "--quiet", "--amend", "--no-edit")
            repo.push()
            out.append(f"bare repo {repo.bare}, work clone {repo.work}")
            out.append(f"bakes shortened to {BAKE[:-1]} s for the demo; examples/config-repo "
                       f"uses {'/'.join(old)}")  # fmt: skip
            out.append(f"{edits.POLICY_FILE}: {policy_text(policy)}")
            out.append(f"pushed {repo.head()[:12]}")

        with s.step("Start the Center (`konorkestra center`)", logs=self._procs()) as out:
            self.center = center = self.stack.center(repo.bare, "--poll", "5")
            out.append(f"serving {center.url} (pid {center.proc.pid}, TLS "
                       f"{'on' if center.url.startswith('https') else 'off'})")  # fmt: skip
            out.append(f"dashboard {center.dashboard_url}")
            commit = center.wait_commit(repo.head())
            if commit["status"] != "accepted":
                raise DemoError(f"the initial commit was {commit['status']}: {commit}")
            rels = ", ".join(f"{r['group']} #{r['sequence']}" for r in commit["releases"])
            out.append(f"ingested {repo.head()[:12]}: accepted, signed releases: {rels}")

        title = (f"Join and run {len(NODES)} Agents, one join token each "
                 "(`konorctl token create`, `konorkestra agent join|run`)")  # fmt: skip
        with s.step(title, logs=self._procs()) as out:
            self.nodes = nodes = join_nodes(self.stack, center, NODES, [GROUP])
            for node in nodes:
                node.agent.wait_committed(GROUP, 1)
            out.append(", ".join(f"{n.name} ({n.node_id[:8]}…, pid {n.agent.proc.pid})"
                                 for n in nodes))  # fmt: skip
            first = short((nodes[0].agent.committed(GROUP) or {}).get("release"))
            out.append(f"each verified and committed {first}, the Group's first Release")

        with s.step("Start the sample app on every node (examples/apps/checkout_app.py)",
                    logs=self._procs()) as out:  # fmt: skip
            start_apps(self.stack, nodes, GROUP, APP)
            witness = Witness(center, GROUP, nodes)
            ev = app_event(nodes[0].the_app.proc.lines[0].text)
            pids = ", ".join(str(n.pid) for n in nodes)
            out.append(f"{len(nodes)} apps (Python SDK), pids {pids}: all on "
                       f"{short(ev.get('release'))}, checkout-api.timeout_ms = "
                       f"[bold]{timeout_ms(ev)}[/]")  # fmt: skip
            out.append("each reports error_rate and latency_p99_ms, which the guards read")

            def known() -> bool:
                witness.observe()
                return all(witness.saw(n.name, n.pid) for n in nodes)

            wait_until(known, timeout=20, interval=0.2, watch=self._procs(),
                       what="the Center to record every app process")  # fmt: skip

        self.story = story = RolloutStory(s, center, repo, nodes, witness, columns=self.columns)
        story.canary()
        story.bake()
        story.approve_wave("canary healthy for the whole bake", last=False)
        story.approve_wave("25 % healthy", last=True)
        self.invalid_change()
        story.bad_release()
        story.who_saw_what()

    def invalid_change(self) -> None:
        assert self.center is not None and self.repo is not None
        center, repo = self.center, self.repo
        with self.steps.step("Push an invalid change (timeout_ms: 5 < minimum 10): refused",
                             logs=self._procs()) as out:  # fmt: skip
            before = center.get("/v1/releases", group=GROUP, limit=1)["releases"][0]
            marks = {n.name: n.mark() for n in self.nodes}
            repo.write(edits.API_FILE, edits.checkout_api(4, timeout_ms=5), append=True)
            bad = repo.commit("checkout-api v4: timeout 5 ms (too low)")
            repo.push()
            commit = center.wait_commit(bad)
            if commit["status"] == "accepted":
                raise DemoError("the Center accepted an invalid commit")
            table = center.konorctl("commits", "--limit", "2", columns=self.columns).stdout
            out.append("$ konorctl commits --limit 2\n    " + indent(excerpt(table, 10)))
            for d in commit.get("diagnostics", [])[:2]:
                where = ":".join(str(d[k]) for k in ("file", "line") if d.get(k))
                out.append(
                    f"[red]{escape(where)}: {escape(d['message'])}[/] " + escape(f"[{d['code']}]")
                )
            after = center.get("/v1/releases", group=GROUP, limit=1)["releases"][0]
            if after["id"] != before["id"]:
                raise DemoError(f"a release was created from a refused commit: {after['id']}")
            for node in self.nodes:
                printed = node.lines_since(marks[node.name])
                if printed:
                    raise DemoError(f"{node.name}'s app changed: {printed[0].text[:200]}")
            out.append(f"no release; every app still running on {short(before['id'])}, "
                       f"timeout_ms = [bold]650[/]")  # fmt: skip
            git(repo.work, "revert", "--no-edit", "HEAD")
            repo.push()
            reverted = center.wait_commit(repo.head())
            if reverted["status"] != "accepted" or reverted["releases"]:
                raise DemoError(f"the revert was {reverted['status']}: {reverted}")
            out.append(f"$ git revert HEAD && git push   → {repo.head()[:12]}: accepted, "
                       f"no new release (same content as {short(before['id'])})")  # fmt: skip

    def print_dashboard(self) -> None:
        """The dashboard's URL and a new operator token to log in with (its secret shown once)."""
        assert self.center is not None
        center, c = self.center, self.console
        try:
            token = center.create_api_token(DASHBOARD_TOKEN, "operator")
        except DemoError as e:  # the stack still runs: say why, the rest works without it
            c.print(f"[red]✗[/] no dashboard token: {escape(str(e))}", soft_wrap=True)
            return
        c.print(f"Dashboard   {center.dashboard_url}   log in with this operator API token "
                f"(shown once): {token}", highlight=False, soft_wrap=True)  # fmt: skip
        if center.ca_file is not None:
            c.print(f"            its TLS certificate comes from the Center's own CA "
                    f"({center.ca_file}): your browser warns until you trust it", highlight=False,
                    soft_wrap=True)  # fmt: skip

    def keep_running(self) -> None:
        """Print how to play further, then wait for Ctrl-C (or SIGTERM)."""
        assert self.center and self.nodes and self.repo
        env = self.center.konorctl_env()
        env.pop("KONORCTL_CONFIG", None)
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        c = self.console
        c.rule("[bold]Still running[/] (Ctrl-C stops everything and cleans up)")
        c.print(f"Center      {self.center.url}   (log {self.center.proc.log})", highlight=False)
        self.print_dashboard()
        for node in self.nodes:
            c.print(f"Node        {node.name}: agent socket {node.agent.socket}, app pid "
                    f"{node.pid} (log {node.the_app.proc.log})", highlight=False,
                    soft_wrap=True)  # fmt: skip
        c.print(f"Config repo {self.repo.work}  → pushes to {self.repo.bare}\n", highlight=False)
        c.print("Try:", highlight=False)
        first = self.nodes[0]
        for cmd in (
            f"export {exports}",
            "konorctl releases; konorctl commits; konorctl nodes; konorctl rollouts",
            "konorctl audit   # rollout.started, wave.started, approval.granted, guard.breached…",
            f"konorctl nodes show {first.name}",
            f"cd {self.repo.work} && $EDITOR {edits.API_FILE}   # add a version 5",
            "git commit -am 'my change' && git push",
            f"konorctl rollout status {GROUP} --watch   # in another terminal",
            f"konorctl rollout approve {GROUP} --reason 'looks good'   # or in the dashboard",
            f"konorkestra agent status --data {first.agent.data}",
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


def _summary(demo: Demo, took: float) -> str:
    story = demo.story
    assert story is not None and story.canaries
    canary, n = story.canaries[0].name, len(demo.nodes)
    return (
        f"\n[bold green]✓ Demo passed[/] in {took:.1f} s: {short(story.good)} reached the canary "
        f"{canary} first (push → app {story.latency_ms:.0f} ms), then {n}/{n} nodes after two "
        f"approvals; the invalid commit was refused; the bad {short(story.bad)} failed on "
        f"{canary} only and was rolled back automatically ({short(story.rollback)}); the other "
        f"{n - 1} apps never saw it."
    )


def run_demo(console: Console, *, keep: bool = False) -> int:
    """Run the demo; 0 when every step passed, 1 otherwise. Cleans up in every case."""
    root = Path(tempfile.mkdtemp(prefix="konorkestra-demo-"))
    demo = Demo(console, root)
    started = time.monotonic()
    console.rule("[bold]Konorkestra demo[/]: Git commit → signed release → canary → fleet")
    failed = False
    try:
        demo.run()
        console.print(_summary(demo, time.monotonic() - started), highlight=False)
        if keep:
            demo.keep_running()
        elif demo.center is not None:
            console.print(f"The dashboard was at {demo.center.dashboard_url}; `konorkestra "
                          "demo --keep` keeps it up and prints a token to log in.",
                          highlight=False)  # fmt: skip
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
