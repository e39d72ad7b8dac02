"""A real fleet for the rollout end-to-end tests: one Center, ten agents, SDK apps.

Example::

    with open_fleet(tmp) as fleet:                   # Center + 10 agents + 3 checkout apps
        new = fleet.release("v3", policy(bakes=(1, 1)))
        fleet.wait_status(lambda s: s["phase"] == "completed", "the rollout to complete")
        assert all(seqs == sorted(set(seqs)) for seqs in fleet.commits().values())

Invariants:

* Everything is the real thing: ``konorkestra center`` on its own data
  directory, ten ``konorkestra agent run`` processes enrolled in ``checkout``
  with single-use join tokens, and ``examples/apps/checkout_app.py`` (the
  Python SDK) next to the canary node, a node of the 50 % wave and a node of
  the last wave.
* :attr:`Fleet.agents` is in the rollout order the docs promise (rule W2: the
  sha256 of ``checkout NUL node id``), computed here and not by the engine, so
  :meth:`Fleet.wave` is the test's own expectation of who is in a wave.
* Each :meth:`Fleet.release` writes the Policy the test asks for, a new
  ``checkout-api`` version and the Group's ``checkout-flags`` pin in one
  commit, so every call makes exactly one new Release with that Policy.
* What a node committed comes from the agent's own transaction log
  (``COMMITTED`` records, in order), not from the Center.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from konorkestra.agent.store.txlog import HEADER, scan
from konorkestra.demo import AgentHandle, AppHandle, CenterHandle, ConfigRepo, Stack, edits
from konorkestra.demo.procs import DemoError, wait_until
from konorkestra.demo.stack import Grant, examples_dir

GROUP = "checkout"
NODES = 10
STEPS = (10, 50, 100)
"""The fast Policy's steps: waves of 1, 5 and 10 nodes."""
GOOD_FLAGS = 3
"""The seed's checkout-flags version (no ``failBadReload``)."""
APP_PLACES = (0, 1, NODES - 1)
"""Where apps run, by place in the rollout order: the canary, the 50 % wave, the last wave."""
WAIT = 60.0
"""Deadline of one wait on this shared 2-core machine; waits end as soon as they can."""
ROLLOUT = ("rollout.", "wave.", "bake.", "approval.", "guard.", "command.")  # audit prefixes
RUNNING = ("waving", "baking", "awaiting_approval", "paused")


def policy(*, bakes: tuple[int, int] = (1, 1), approval: str = "auto") -> str:
    """The test's fast canary Policy: 10 % / 50 % / 100 %, bakes in seconds, and the guards
    that judge each process's reload (the SDK acks), which is what these tests are about."""
    steps = ((STEPS[0], f"{bakes[0]}s"), (STEPS[1], f"{bakes[1]}s"), (STEPS[2], None))
    return edits.canary_policy(steps, approval=approval)


def order_key(node_id: str) -> str:
    """Rule W2 of docs/guide/rollouts.md, written out independently of the engine."""
    return hashlib.sha256(f"{GROUP}\0{node_id}".encode()).hexdigest()


def wave_size(percent: int, enrolled: int = NODES) -> int:
    """Rule W1: ``ceil(percent x enrolled / 100)``, at least one node."""
    return max(1, min(enrolled, math.ceil(percent * enrolled / 100)))


def committed_sequences(agent: AgentHandle, group: str = GROUP) -> list[int]:
    """Every sequence the agent committed for ``group``, in log order (its own txlog)."""
    out: list[int] = []
    for path in sorted((agent.data / "log").glob("*.log"), key=lambda p: int(p.stem)):
        data = path.read_bytes()
        if len(data) >= HEADER.size:  # a segment is read from its first record's lsn on
            bodies, _, _ = scan(data, HEADER.unpack_from(data, 0)[3])
            out += [b["sequence"] for b in bodies if b.get("type") == "committed"
                    and b.get("group") == group]  # fmt: skip
    return out


@dataclass
class Fleet:
    """The running installation and the test's view of it."""

    stack: Stack
    repo: ConfigRepo
    center: CenterHandle
    agents: list[AgentHandle]
    """In rollout order (W2): ``agents[0]`` is the canary."""
    apps: dict[str, AppHandle] = field(default_factory=dict)
    """Node name -> the checkout app next to it."""
    api_version: int = 2
    flags_version: int = GOOD_FLAGS

    def wave(self, step: int) -> list[AgentHandle]:
        """The nodes that hold the new Release once step ``step``'s wave is complete."""
        return self.agents[: wave_size(STEPS[step], len(self.agents))]

    def release(self, note: str, policy_text: str, *, bad: bool = False) -> dict[str, Any]:
        """Commit one change (a new checkout-api version; ``bad``: a checkout-flags version
        whose reload raises in the app) with ``policy_text``; the Release it made."""
        self.api_version += 1
        self.repo.write("policies/canary.yaml", policy_text)
        self.repo.write(edits.API_FILE, edits.checkout_api(self.api_version,
                        timeout_ms=300 + self.api_version), append=True)  # fmt: skip
        flags = GOOD_FLAGS
        if bad:
            self.flags_version += 1
            flags = self.flags_version
            self.repo.write(edits.FLAGS_FILE, edits.checkout_flags(flags, fail_reload=True),
                            append=True)  # fmt: skip
        self.repo.write(edits.GROUP_FILE, edits.checkout_group(flags))
        sha = self.repo.commit(f"{note}: checkout-api v{self.api_version}, flags@{flags}")
        self.repo.push()
        commit = wait_until(
            lambda: (c := self.center.wait_commit(sha, timeout=WAIT)).get("releases") and c,
            timeout=WAIT, what=f"the Release of {note}", watch=[self.center.proc],
        )  # fmt: skip
        [made] = [r for r in commit["releases"] if r["group"] == GROUP]
        return made  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        return self.center.get(f"/v1/rollouts/{GROUP}")  # type: ignore[no-any-return]

    def wait_status(
        self, ok: Callable[[dict[str, Any]], bool], what: str, timeout: float = WAIT
    ) -> dict[str, Any]:
        return wait_until(lambda: st if ok(st := self.status()) else None, timeout=timeout,
                          what=what, watch=self.watched(), interval=0.1)  # fmt: skip

    def steer(self, command: str, reason: str = "") -> Any:
        """``POST /v1/rollouts/checkout/<command>`` as admin: (HTTP status, JSON body)."""
        resp = self.center.http.post(
            f"/v1/rollouts/{GROUP}/{command}", json={"reason": reason},
            headers={"Authorization": f"Bearer {self.center.admin_token}"},
        )  # fmt: skip
        return resp.status_code, resp.json()

    def audit_mark(self) -> int:
        """The newest audit ``seq`` now: pass it to :meth:`audit` to see only later events."""
        events = self.audit()
        return int(events[-1]["seq"]) if events else 0

    def audit(self, after: int = 0) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while after is not None:
            page = self.center.get("/v1/audit", after=after, limit=5000)
            events, after = events + page["events"], page["next"]
        return events

    def applied_events(self, after: int = 0) -> dict[str, list[int]]:
        """Node name -> sequences of its ``node.release_applied`` events, in audit order."""
        out: dict[str, list[int]] = {a.node_id: [] for a in self.agents}
        for e in self.audit(after):
            d = e["details"]
            if e["action"] == "node.release_applied" and d.get("group") == GROUP:
                out[d["node"]].append(d["sequence"])
        return {a.name: out[a.node_id] for a in self.agents}

    def node_processes(self, agent: AgentHandle) -> list[dict[str, Any]]:
        """The processes ``GET /v1/nodes/{id}`` lists for the Group (who saw what)."""
        for group in self.center.get(f"/v1/nodes/{agent.node_id}").get("state", []):
            if group.get("group") == GROUP:
                return list(group.get("processes", []))
        return []

    def sequences(self) -> dict[str, int | None]:
        """Node name -> the sequence it serves now (``current/checkout/release.json``)."""
        return {a.name: (a.committed(GROUP) or {}).get("sequence") for a in self.agents}

    def on(self, sequence: int) -> set[str]:
        return {name for name, seq in self.sequences().items() if seq == sequence}

    def commits(self) -> dict[str, list[int]]:
        """Node name -> every sequence it committed, in order (the agent's own log)."""
        return {a.name: committed_sequences(a) for a in self.agents}

    def app_lines(self, release_id: str) -> dict[str, list[str]]:
        """Node name -> the lines of its app that name ``release_id``."""
        return {node: [ln.text for ln in app.proc.lines if f"release={release_id}" in ln.text]
                for node, app in self.apps.items()}  # fmt: skip

    def app_sequences(self) -> dict[str, list[int]]:
        """Node name -> the sequences its app started on or applied, in the order it printed."""
        seq = re.compile(r"^(start|applied) .*\bsequence=(\d+)")
        return {node: [int(m[2]) for ln in app.proc.lines if (m := seq.match(ln.text))]
                for node, app in self.apps.items()}  # fmt: skip

    def wait_on(self, sequence: int, names: set[str], what: str) -> None:
        """Wait until exactly ``names`` serve ``sequence``."""
        wait_until(lambda: self.on(sequence) == names, timeout=WAIT, what=what,
                   watch=self.watched(), interval=0.1)  # fmt: skip

    def watched(self) -> list[Any]:
        return [self.center.proc, *(a.proc for a in self.agents),
                *(app.proc for app in self.apps.values())]  # fmt: skip

    def settle(self) -> dict[str, Any]:
        """Wait for the Group's latest Release's rollout to end; its status."""
        newest = max(
            r["sequence"] for r in self.center.get("/v1/releases", group=GROUP)["releases"]
        )
        return self.wait_status(
            lambda s: (
                s["phase"] in ("completed", "rolled_back", "aborted")
                and newest in (s["release"]["sequence"], (s["rollback"] or {}).get("sequence"))
            ),
            "the latest rollout to end",
        )


def _grant(center: CenterHandle) -> Grant:
    """A single-use join token for ``checkout``, through the API (no CLI start-up per token)."""
    resp = center.http.post(
        "/v1/join-tokens", json={"groups": [GROUP], "ttl_seconds": 900},
        headers={"Authorization": f"Bearer {center.admin_token}"},
    )  # fmt: skip
    body = resp.raise_for_status().json()
    return Grant(body["token"], body["ca_pin"], (GROUP,), "")


def _reported(center: CenterHandle, agent: AgentHandle, sequence: int) -> bool:
    """The Center has stored ``agent``'s report that it committed ``sequence``."""
    state = center.get(f"/v1/nodes/{agent.node_id}").get("state", [])
    return any(g.get("group") == GROUP and (g.get("applied") or {}).get("sequence") == sequence
               for g in state)  # fmt: skip


@contextmanager
def open_fleet(root: Path, *, agent_toml: str = "") -> Iterator[Fleet]:
    """Center, :data:`NODES` agents on the seed's Release, an app at each of :data:`APP_PLACES`.

    ``agent_toml`` is written as each agent's ``agent.toml`` (its config file) after it joined.
    """
    repo = ConfigRepo.create(root, seed=examples_dir() / "config-repo")
    repo.write("policies/canary.yaml", policy())
    repo.commit("the test's fast canary policy")
    repo.push()
    with Stack(root) as stack:
        center = stack.center(repo.bare)
        center.wait_commit(repo.head())
        agents = [stack.agent(f"node-{i:02d}") for i in range(NODES)]
        grants = [_grant(center) for _ in agents]
        with ThreadPoolExecutor(4) as pool:  # `agent join` is a process start each
            list(pool.map(lambda ag: ag[0].join(center, ag[1]), zip(agents, grants, strict=True)))
        for agent in agents:
            (agent.data / "agent.toml").write_text(agent_toml)  # empty: every default
            agent.start()
        # The seed's rollout bakes as well: no test's Release may supersede it (S5).
        fleet = Fleet(stack, repo, center, agents)
        first = fleet.settle()["release"]["sequence"]
        for agent in agents:
            agent.wait_committed(GROUP, first, timeout=WAIT)
            wait_until(partial(_reported, center, agent, first), timeout=WAIT,
                       what=f"{agent.name}'s report of sequence {first}")  # fmt: skip
        agents.sort(key=lambda a: order_key(a.node_id))
        for place in APP_PLACES:
            agent = agents[place]
            fleet.apps[agent.name] = stack.app(agent, GROUP, name=f"app-{agent.name}")
        for app in fleet.apps.values():
            app.proc.wait_line(r"^start ", timeout=WAIT)
        yield fleet


class Observer:
    """Samples, about every 0.1 s, each agent's served sequence and then the rollout status.

    Reading the agents first means the status in a sample is never older than
    the agents' state in it: a node on the new Release must already be targeted.
    Inside :meth:`outage` (the test kills and restarts the Center) a failed read
    of the status is no error and gives no sample; any other failure ends the
    sampling and is raised by :func:`assert_within_steps`.
    """

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.samples: list[tuple[dict[str, int | None], dict[str, Any]]] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rollout-observer", daemon=True)
        self._outages = 0
        self._down = False

    @contextmanager
    def outage(self) -> Iterator[None]:
        self._outages += 1
        self._down = True
        try:
            yield
        finally:
            self._down = False

    def _run(self) -> None:
        try:
            while not self._stop.wait(0.1):  # a sampling period, not a wait for a condition
                outages = self._outages
                seqs = self.fleet.sequences()
                try:
                    status = self.fleet.status()
                except (httpx.HTTPError, DemoError):
                    if self._down or self._outages != outages:
                        continue
                    raise
                self.samples.append((seqs, status))
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Observer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# -- checks shared by the rollout tests ---------------------------------------------------


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def rollout_events(fleet: Fleet, mark: int, release: str) -> list[dict[str, Any]]:
    """The rollout's audit events about ``release`` after ``mark``, oldest first."""
    ours = (e for e in fleet.audit(mark) if e["details"].get("release") == release)
    return [e for e in ours if e["action"].startswith(ROLLOUT)]


def names(agents: list[Any]) -> set[str]:
    return {a.name for a in agents}


def steady_wave(
    fleet: Fleet, sequence: int, step: int, phase: str
) -> tuple[dict[str, Any], set[str]]:
    """A status in ``phase`` at ``step`` and the nodes on ``sequence`` read between two
    reads of that same status revision (so no decision moved in between)."""

    def probe() -> tuple[dict[str, Any], set[str]] | None:
        before = fleet.status()
        where = (before["release"]["sequence"], before["step"], before["phase"])
        if where != (sequence, step, phase):
            return None
        on = fleet.on(sequence)
        return (before, on) if fleet.status()["revision"] == before["revision"] else None

    return wait_until(probe, timeout=WAIT, what=f"step {step} {phase} of sequence {sequence}",
                      watch=fleet.watched(), interval=0.05)  # fmt: skip


def assert_within_steps(obs: Observer, fleet: Fleet, sequence: int) -> None:
    """No sample ever had a node on ``sequence`` outside the targeted wave of its step."""
    if obs.error is not None:
        raise obs.error
    seen = 0
    for seqs, st in obs.samples:
        if st["release"]["sequence"] != sequence or st["phase"] not in RUNNING:
            continue
        seen += 1
        on = {n for n, s in seqs.items() if s == sequence}
        allowed = names(fleet.wave(st["step"]))
        assert on <= allowed, (st["step"], st["phase"], on - allowed)
        assert len(on) <= st["nodes"]["targeted"] <= wave_size(STEPS[st["step"]])
    assert seen, "the sampler never saw the rollout running"


def assert_in_order(fleet: Fleet, mark: int) -> None:
    """Every agent committed strictly increasing sequences; the audit agrees per node."""
    for node, seqs in fleet.commits().items():
        assert seqs == sorted(set(seqs)), (node, seqs)
    for node, seqs in fleet.applied_events(mark).items():
        assert seqs == sorted(set(seqs)), (node, seqs)
