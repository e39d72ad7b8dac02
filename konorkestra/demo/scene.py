"""What the demo's rollout steps act on and look at: the Center, the repo and the fleet.

Example::

    scene = Scene(steps, center, repo, nodes, witness)
    sha, pushed_at, commit = scene.push("checkout-api v3")   # git commit + push, ingested
    st = scene.wait_status("the bake to end", lambda s: s["phase"] != "baking")
    ran, said = scene.approve("canary healthy")   # konorctl rollout approve checkout --reason …
    scene.quiet(others, marks, 1)     # still on sequence 1, and their apps printed nothing

Invariants:

* Every wait is a condition with a deadline (:data:`WAIT` unless said) that
  watches every process of the installation, so a crash fails the step at once.
* Nothing here prints; the steps (:mod:`konorkestra.demo.rollout_story`) say
  what they checked.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from typing import Any

from konorkestra.demo.fleet import DemoNode
from konorkestra.demo.gitrepo import ConfigRepo
from konorkestra.demo.procs import DemoError, Proc, wait_until
from konorkestra.demo.stack import CenterHandle
from konorkestra.demo.steps import Steps
from konorkestra.demo.whosaw import Witness

GROUP = "checkout"
BAKE = "3s"
"""Every bake of the demo's canary Policy (the example repo's are 5m and 10m)."""
WAIT = 40.0
"""Seconds any one rollout move may take before the step fails (bakes included)."""


def names(nodes: Sequence[DemoNode]) -> str:
    return ", ".join(n.name for n in nodes)


class Scene:
    """A running Center, its config repo and its fleet, with the demo's checks."""

    def __init__(
        self,
        steps: Steps,
        center: CenterHandle,
        repo: ConfigRepo,
        nodes: Sequence[DemoNode],
        witness: Witness,
        *,
        columns: int = 120,
    ) -> None:
        self.steps, self.center, self.repo = steps, center, repo
        self.nodes, self.witness, self.columns = list(nodes), witness, columns

    def procs(self) -> list[Proc]:
        apps = [n.app.proc for n in self.nodes if n.app is not None]
        return [self.center.proc, *(n.agent.proc for n in self.nodes), *apps]

    def status(self) -> dict[str, Any]:
        """The Group's rollout as ``GET /v1/rollouts/{group}`` shows it."""
        return self.center.get(f"/v1/rollouts/{GROUP}")  # type: ignore[no-any-return]

    def wait_status(
        self, what: str, ok: Callable[[dict[str, Any]], bool], *, timeout: float = WAIT
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            st = self.status()
            return st if ok(st) else None

        return wait_until(probe, timeout=timeout, interval=0.1, what=what, watch=self.procs())

    def push(self, message: str) -> tuple[str, float, dict[str, Any]]:
        """Commit and push; the sha, when the push started, and the Center's commit."""
        sha = self.repo.commit(message)
        pushed_at = self.repo.push()
        return sha, pushed_at, self.center.wait_commit(sha)

    def released(self, commit: dict[str, Any]) -> str:
        """The id of the Release of :data:`GROUP` that ``commit`` created."""
        found = [r["id"] for r in commit.get("releases", []) if r.get("group") == GROUP]
        if commit.get("status") != "accepted" or len(found) != 1:
            raise DemoError(f"the commit made no {GROUP} release: {str(commit)[:300]}")
        return str(found[0])

    def on(self, release: str) -> list[DemoNode]:
        """The nodes whose agent has committed ``release``."""
        return [n for n in self.nodes if (n.agent.committed(GROUP) or {}).get("release") == release]

    def quiet(self, nodes: Sequence[DemoNode], marks: dict[str, int], sequence: int) -> None:
        """``nodes`` are still on ``sequence`` and their apps printed nothing since ``marks``."""
        for node in nodes:
            if node.sequence(GROUP) != sequence:
                raise DemoError(
                    f"{node.name} committed sequence {node.sequence(GROUP)}, "
                    f"not {sequence}: the rollout reached beyond its wave"
                )
            printed = node.lines_since(marks[node.name])
            if printed:
                raise DemoError(f"{node.name}'s app changed: {printed[0].text[:200]}")

    def approve(self, reason: str) -> tuple[str, str]:
        """``konorctl rollout approve`` as an operator: the command line and what it printed."""
        args = ("rollout", "approve", GROUP, "--reason", reason)
        done = self.center.konorctl(*args, columns=self.columns)
        return "konorctl " + shlex.join(args), done.stdout.strip()

    def audit(self, release: str) -> list[dict[str, Any]]:
        """The audit events about ``release`` (rollout.started, wave.started, …), in order."""
        events = self.center.get("/v1/audit", limit=5000)["events"]
        return [e for e in events if (e.get("details") or {}).get("release") == release]

    def wait_ack(self, node: DemoNode, release: str, status: str, *, interval: float) -> None:
        """Observe (:class:`Witness`) until the Center shows ``node``'s app acked ``release``."""

        def acked() -> bool:
            self.witness.observe([node.node_id])
            return self.witness.saw(node.name, node.pid).get(release) == status

        wait_until(
            acked,
            timeout=WAIT,
            interval=interval,
            watch=self.procs(),
            what=f"the Center to record {node.name}'s ack {status} of {release}",
        )
