"""The rollout part of the demo: canary, bake, approval, waves, and a bad Release rolled back.

Example (what :class:`konorkestra.demo.story.Demo` runs once every node has its app)::

    story = RolloutStory(steps, center, repo, nodes, witness)
    story.canary()                          # push checkout-api v3: only the canary takes it
    story.bake()                            # bake, guards pass, then it waits for approval
    story.approve_wave("ok", last=False)    # approve: wave 2 (25 %) and its bake ...
    story.approve_wave("ok", last=True)     # ... and wave 3 (100 %): completed
    story.bad_release()                     # failBadReload: the canary's reload fails -> rollback
    story.who_saw_what()                    # the Center's record of every process

Invariants:

* Every claim printed is checked first, from the Center (``/v1/rollouts``,
  ``/v1/audit``, ``/v1/nodes``), the agents' committed Releases and the apps'
  own output: the canary is the only node the first wave touched and the
  other apps printed nothing while it baked; the rollout waited for an
  approval; the bad Release was rolled back without an operator; no node but
  the canary was ever told to take it, committed it, or handed it to an app.
* The canary is whichever node the Center chose (stable hash order, rule W2);
  the demo finds it, it does not assume it. The bad Release must reach the
  same node.
* Every wait is a condition with a deadline (no fixed sleeps); the bakes the
  demo waits for are the Policy's (seconds, :data:`~konorkestra.demo.scene.BAKE`).
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from konorkestra.demo import edits
from konorkestra.demo.fleet import DemoNode
from konorkestra.demo.procs import DemoError, wait_until
from konorkestra.demo.rollout_view import (
    approvals_text,
    audit_lines,
    guards_text,
    phase_text,
    waves_text,
)
from konorkestra.demo.scene import BAKE, GROUP, WAIT, Scene, names
from konorkestra.demo.steps import app_event, excerpt, indent, short, timeout_ms

__all__ = ["BAKE", "GROUP", "RolloutStory"]

ENDED = ("completed", "rolled_back", "aborted")


class RolloutStory(Scene):
    """The demo's rollout steps, in the order :class:`~konorkestra.demo.story.Demo` runs them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.canaries: list[DemoNode] = []
        self.stable = self.good = self.bad = self.rollback = ""
        """Release ids: before the story, rolled out, rolled back, and the rollback."""
        self.latency_ms = 0.0
        self.marks: dict[str, int] = {}
        """Each app's output line count just before the good Release was pushed."""

    def canary(self) -> None:
        title = "Push checkout-api v3 (timeout_ms 400 → 650): only the canary node takes it"
        with self.steps.step(title, logs=self.procs()) as out:
            self.marks = marks = {n.name: n.mark() for n in self.nodes}
            self.stable = str((self.nodes[0].agent.committed(GROUP) or {}).get("release"))
            api = edits.checkout_api(3, timeout_ms=650, max_connections=1024)
            self.repo.write(edits.API_FILE, api, append=True)
            sha, pushed_at, commit = self.push("checkout-api v3: timeout 650 ms, 1024 connections")
            self.good = self.released(commit)
            out.append(f"$ git commit -m 'checkout-api v3: …' && git push   → {sha[:12]}")

            def first_app() -> tuple[DemoNode, Any] | None:
                for node in self.nodes:
                    for line in node.lines_since(marks[node.name]):
                        return node, line
                return None

            node, line = wait_until(
                first_app,
                timeout=WAIT,
                interval=0.02,
                watch=self.procs(),
                what="an app to take the new release",
            )
            ev = app_event(line.text)
            if ev["event"] != "applied" or ev.get("release") != self.good:
                raise DemoError(f"{node.name}'s app did not apply {self.good}: {line.text[:200]}")
            self.latency_ms = (line.at - pushed_at) * 1000
            st = self.wait_status(
                "the canary wave to complete",
                lambda s: s["release"]["id"] == self.good and s["phase"] != "waving",
            )
            self.canaries = self.on(self.good)
            if st["nodes"]["targeted"] != 1 or self.canaries != [node]:
                raise DemoError(
                    f"the first wave is {st['nodes']['targeted']} node(s) "
                    f"({names(self.canaries)}), not the canary {node.name}"
                )
            first, enrolled = st["waves"][0], st["nodes"]["enrolled"]
            out.append(
                f"Center: release {short(self.good)}, Policy {st['policy']['name']}, "
                f"step 1/{st['steps']}: {first['percent']} % of {enrolled} nodes = "
                f"{first['nodes']} node, the canary: [bold]{node.name}[/]"
            )
            out.append(
                f"{node.name}'s app (pid {node.pid}) applied {short(self.good)}: "
                f"checkout-api.timeout_ms = [bold]{timeout_ms(ev)}[/]   "
                f"[bold green]push → canary app: {self.latency_ms:.0f} ms[/]"
            )
            others = [n for n in self.nodes if n is not node]
            self.quiet(others, marks, _sequence(self.stable))
            out.append(
                f"{names(others)}: agents still on {short(self.stable)}, "
                f"apps silent, still on timeout_ms = 400"
            )
            self.witness.observe()

    def bake(self) -> None:
        title = f"Bake ({BAKE[:-1]} s) with the guards watching the canary; then wait for approval"
        with self.steps.step(title, logs=self.procs()) as out:
            st = self.wait_status(
                "the canary's bake to end", lambda s: s["phase"] not in ("waving", "baking")
            )
            if st["phase"] != "awaiting_approval":
                raise DemoError(f"after the bake the rollout is {st['phase']}: {st['reason']}")
            shown = self.center.konorctl("rollout", "status", GROUP, columns=self.columns)
            out.append(f"$ konorctl rollout status {GROUP}\n    " + indent(_status(shown.stdout)))
            others = [n for n in self.nodes if n not in self.canaries]
            self.quiet(others, self.marks, _sequence(self.stable))
            out.append(
                f"{len(others)} nodes still on {short(self.stable)}: the rollout holds "
                f"until an operator approves (approval: {st['policy']['approval']})"
            )

    def approve_wave(self, reason: str, *, last: bool) -> None:
        before = {n.name for n in self.on(self.good)}
        title = (
            "Approve: the last wave (100 %); the rollout completes"
            if last
            else "Approve: the next wave (25 %), then its bake"
        )
        with self.steps.step(title, logs=self.procs()) as out:
            ran, said = self.approve(reason)
            out.append(f"$ {escape(ran)}\n    " + indent(said))
            want = "completed" if last else "awaiting_approval"
            st = self.wait_status(
                f"the rollout to be {want}", lambda s: s["phase"] not in ("waving", "baking")
            )
            if st["phase"] != want:
                raise DemoError(f"the rollout is {st['phase']}, not {want}: {st['reason']}")
            reached = self.on(self.good)
            if len(reached) != st["nodes"]["targeted"]:
                raise DemoError(
                    f"{len(reached)} agents committed {self.good}; the Center "
                    f"targeted {st['nodes']['targeted']}"
                )
            added = [n for n in reached if n.name not in before]
            for node in added:
                node.the_app.proc.wait_line(
                    r"^applied release=" + self.good,
                    timeout=WAIT,
                    start=self.marks[node.name],
                    what=f"{node.name}'s app to apply {self.good}",
                )
            out.append(f"waves: {waves_text(st)}")
            out.append(
                f"{names(added)} took {short(self.good)}: {len(reached)}/{len(self.nodes)} "
                f"nodes on it, their apps applied it (timeout_ms = 650)"
            )
            out.append(f"guards: {guards_text(st)}")
            out.append(f"rollout: {phase_text(st)}")
            if last:
                out.append(f"approvals: {approvals_text(st)}")
            self.witness.observe()

    def bad_release(self) -> None:
        title = (
            "Push a bad version (checkout-flags v4, failBadReload): the canary's reload "
            "fails → automatic rollback"
        )
        with self.steps.step(title, logs=self.procs()) as out:
            marks = {n.name: n.mark() for n in self.nodes}
            flags = edits.checkout_flags(4, fail_reload=True)
            self.repo.write(edits.FLAGS_FILE, flags, append=True)
            self.repo.write(edits.GROUP_FILE, edits.checkout_group(4))
            sha, _, commit = self.push("checkout-flags v4: failBadReload")
            self.bad = self.released(commit)
            out.append(
                f"$ git commit -m 'checkout-flags v4: failBadReload' && git push   "
                f"→ {sha[:12]}; Center: release {short(self.bad)}, valid and signed"
            )
            canary = self.canaries[0]
            # Observed every 0.05 s: the Center keeps each process's newest ack only, and
            # the rollback replaces this one within about a second.
            self.wait_ack(canary, self.bad, "failed", interval=0.05)
            _, line = canary.the_app.proc.wait_line(
                r"^failed ", timeout=5, start=marks[canary.name]
            )
            ev = app_event(line.text)
            out.append(
                f"{canary.name}'s app (the same canary): failed {short(ev.get('release'))}: "
                f"{escape(str(ev.get('error')))}; keeps {short(ev.get('keeping'))}"
            )
            st = self.wait_status(
                "the automatic rollback",
                lambda s: s["release"]["id"] == self.bad and s["phase"] in ENDED,
            )
            if st["phase"] != "rolled_back" or not st.get("rollback"):
                raise DemoError(f"the bad release ended {st['phase']}: {st['reason']}")
            self.rollback = str(st["rollback"]["id"])
            events = self.audit(self.bad)
            said = audit_lines(events)
            if not any("guard.breached" in line for line in said):
                raise DemoError(f"no guard.breached event for {self.bad}: {events}")
            out.extend(said)
            rolled = canary.agent.wait_committed(GROUP, int(st["rollback"]["sequence"]), WAIT)
            if rolled.get("release") != self.rollback:
                raise DemoError(f"{canary.name} committed {rolled.get('release')}")
            _, line = canary.the_app.proc.wait_line(
                r"^applied release=" + self.rollback,
                timeout=WAIT,
                start=marks[canary.name],
                what=f"{canary.name}'s app to apply the rollback",
            )
            out.append(
                f"{canary.name} committed {short(self.rollback)}; its app applied it: "
                f"timeout_ms = {timeout_ms(app_event(line.text))}, no failBadReload"
            )
            others = [n for n in self.nodes if n is not canary]
            self.quiet(others, marks, int(st["stable"]["sequence"]))
            told = {
                n for e in events if e["action"] == "wave.started" for n in e["details"]["nodes"]
            }
            if told != {canary.node_id} or st["nodes"]["targeted"] != 1:
                raise DemoError(f"the Center told {sorted(told)} to take {self.bad}")
            out.append(
                f"the Center told only {canary.name} to take {short(self.bad)} (audit "
                f"wave.started); {names(others)} stayed on {short(st['stable']['id'])}, "
                f"their apps silent"
            )
            self.wait_ack(canary, self.rollback, "applied", interval=0.1)
            shown = self.center.konorctl("rollouts", columns=self.columns)
            out.append("$ konorctl rollouts\n    " + indent(excerpt(shown.stdout)))

    def who_saw_what(self) -> None:
        title = "Who saw which Release: the Center's record of every app process"
        with self.steps.step(title, logs=self.procs()) as out:
            self.witness.observe()
            canary = self.canaries[0]
            labels = {self.bad: "bad", self.rollback: "rollback"}
            out.append("from GET /v1/nodes/{id}: each process's releases and its ack of each")
            out.extend(self.witness.table(labels, {canary.name: "canary"}))
            for node in self.nodes:
                if not self.witness.saw(node.name, node.pid):
                    raise DemoError(f"the Center has no record of {node.name}'s app")
                printed = [ln.text for ln in node.the_app.proc.lines if self.bad in ln.text]
                if node is not canary and printed:
                    raise DemoError(f"{node.name}'s app saw {self.bad}: {printed[0][:200]}")
            saw_bad = [(s.node, s.pid) for s in self.witness.rows() if self.bad in s.releases]
            if saw_bad != [(canary.name, canary.pid)]:
                raise DemoError(f"processes that saw {self.bad}: {saw_bad}")
            out.append(
                f"[bold]{short(self.bad)} reached 1 app of {len(self.nodes)}[/] "
                f"({canary.name}, which refused it); the other {len(self.nodes) - 1} apps "
                f"never saw it (their own output agrees)"
            )
            shown = self.center.konorctl("nodes", "show", canary.name, columns=self.columns)
            group = shown.stdout.split(f"\ngroup {GROUP}:", 1)[-1].split("\n\n", 1)[0]
            out.append(
                f"$ konorctl nodes show {canary.name}\n    group {GROUP}:" + indent(group.rstrip())
            )


def _sequence(release: str) -> int:
    """``checkout-2-…`` -> 2."""
    return int(short(release).rsplit("-", 1)[-1])


def _status(text: str) -> str:
    """``konorctl rollout status`` without its clock lines and earlier rollouts."""
    kept, head = [], True
    for line in text.splitlines():
        if line.startswith("earlier rollouts"):
            break
        head = head and not line.startswith("waves")
        if line.strip() and not (head and line.startswith(("from ", "started ", "step "))):
            kept.append(line.rstrip())
    return "\n".join(kept)
