"""What ``konorctl groups`` and ``konorctl groups show G`` show, from the API's JSON (pure).

Example::

    lines = group_lines(center.get("/v1/groups")["groups"], rollouts, nodes, convergence)
    Console().print(groups_table(lines))          # group, stable, in flight, phase, nodes
    Console().print(group_view(detail))           # one Group: definition, Releases, nodes

Invariants:

* Every function takes the Center's JSON (``/v1/groups``, ``/v1/rollouts``,
  ``/v1/nodes``) and returns data or rich renderables; nothing reads the clock,
  the network or a terminal, so the same answers draw the same text (what a
  piped ``--watch`` compares).
* The stable Release is the rollout engine's (rule S4 of
  :mod:`konorkestra.rollout.state`): the new Release once ``completed``, the
  rollback Release once ``rolled_back``, else the stable one the rollout
  started from. A Release is *in flight* while its rollout has not ended. A
  Group without a rollout has its latest Release as stable.
* A Group's nodes are its enrolled, active nodes; ``converged`` is how many of
  the nodes its latest Release targets have committed it (the ``convergence``
  object of ``GET /v1/groups/{name}``), ``None`` when nothing counts it.
* Text that comes from people or the Center is put in :class:`rich.text.Text`,
  never read as markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from konorkestra.cli.rollout_view import ENDED, phase_text, step_of

Json = Mapping[str, Any]


def stable_of(rollout: Json | None, latest: Json | None) -> str | None:
    """The id of the Group's stable Release (S4); the latest Release without a rollout."""
    if rollout is None:
        return None if latest is None else str(latest["id"])
    phase = rollout["phase"]
    ref = rollout["stable"]
    if phase == "completed":
        ref = rollout["release"]
    elif phase == "rolled_back" and rollout.get("rollback"):
        ref = rollout["rollback"]
    return None if not ref else str(ref["id"])


def in_flight_of(rollout: Json | None) -> str | None:
    """The id of the Release being rolled out, None once its rollout ended."""
    if rollout is None or rollout["phase"] in ENDED:
        return None
    return str(rollout["release"]["id"])


def members(group: str, nodes: Sequence[Json]) -> list[Json]:
    """The Group's enrolled, active nodes, by name."""
    found = [n for n in nodes if group in n["groups"] and n["status"] == "active"]
    return sorted(found, key=lambda n: (n["name"], n["id"]))


@dataclass(frozen=True)
class GroupLine:
    """One row of ``konorctl groups``."""

    name: str
    stable: str | None
    in_flight: str | None
    phase: str | None
    step: str | None
    nodes: int
    converged: int | None
    targeted: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.name,
            "stable": self.stable,
            "in_flight": self.in_flight,
            "phase": self.phase,
            "step": self.step,
            "nodes": self.nodes,
            "converged": self.converged,
            "targeted": self.targeted,
        }


def group_line(
    group: Json, rollout: Json | None, nodes: Sequence[Json], convergence: Json | None
) -> GroupLine:
    """A Group's row from its ``/v1/groups`` entry, rollout, all nodes and convergence."""
    counted = None if convergence is None else convergence["nodes"]
    return GroupLine(
        name=str(group["name"]),
        stable=stable_of(rollout, group.get("latest_release")),
        in_flight=in_flight_of(rollout),
        phase=None if rollout is None else str(rollout["phase"]),
        step=None if rollout is None else step_of(rollout),
        nodes=len(members(str(group["name"]), nodes)),
        converged=None if counted is None else int(counted["committed"]),
        targeted=None if counted is None else int(counted["targeted"]),
    )


def group_lines(
    groups: Sequence[Json],
    rollouts: Sequence[Json],
    nodes: Sequence[Json],
    convergence: Mapping[str, Json | None],
) -> list[GroupLine]:
    """Every Group's row, in the order of ``/v1/groups`` (by name)."""
    by_group = {r["group"]: r for r in rollouts}
    return [
        group_line(g, by_group.get(g["name"]), nodes, convergence.get(g["name"])) for g in groups
    ]


def _converged(line: GroupLine) -> str:
    return "-" if line.targeted is None else f"{line.converged}/{line.targeted}"


def _table(*columns: str) -> Table:
    table = Table(title_justify="left")
    for name in columns:
        table.add_column(name, no_wrap=True)
    return table


def groups_table(lines: Sequence[GroupLine]) -> RenderableType:
    """``group | stable | in flight | phase | nodes | converged`` (of the latest Release)."""
    if not lines:
        return Text("no Groups (no accepted commit defines one yet)")
    table = _table("group", "stable", "in flight", "phase", "nodes", "converged")
    for line in lines:
        phase = Text("-") if line.phase is None else phase_text(line.phase)
        if line.in_flight is not None and line.step is not None:
            phase.append(f" {line.step}")
        table.add_row(
            Text(line.name),
            Text(line.stable or "-"),
            Text(line.in_flight or "-"),
            phase,
            str(line.nodes),
            _converged(line),
        )
    return table


def _node_state(node: Json, group: str, stable: str | None, in_flight: str | None) -> list[str]:
    """``committed``, ``on``, ``stale``, ``refused`` of a node for ``group``."""
    [state] = [s for s in node.get("state", []) if s["group"] == group] or [{}]
    applied = state.get("applied")
    held = None if not applied else str(applied["release"])
    on = "-"
    if held is not None:
        on = "in flight" if held == in_flight else "stable" if held == stable else "other"
    refused = state.get("refused")
    return [
        held or "none",
        on,
        "yes" if state.get("stale") else "",
        "" if not refused else f"{refused['release']}: {refused['code']}",
    ]


def group_view(detail: Json) -> RenderableType:
    """``konorctl groups show``: definition, stable and in-flight Releases, Policy, nodes.

    ``detail`` is what ``groups show -o json`` prints: ``group`` (``/v1/groups/{name}``),
    ``rollout`` (``/v1/rollouts/{group}`` or None) and ``nodes`` (each as
    ``/v1/nodes/{id}`` answers, with its ``state``), and ``nodes_total``: how many
    the Group has, when ``nodes`` are only the first of them."""
    group, rollout, nodes = detail["group"], detail["rollout"], detail["nodes"]
    name = str(group["name"])
    stable = stable_of(rollout, group.get("latest_release"))
    in_flight = in_flight_of(rollout)
    head = Text()
    head.append(f"group {name}", style="bold")
    if group.get("commit"):
        head.append(f"  defined by commit {str(group['commit'])[:12]}")
    elif not group.get("defined"):
        head.append("  (no longer defined by the latest accepted commit)", style="yellow")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    policy = group.get("policy")
    if rollout is not None:
        p = rollout["policy"]
        facts.add_row("policy", Text(f"{p['name']} (strategy {p['strategy']}, approval "
                                     f"{p['approval']}, on failure {p['onFailure']})"))  # fmt: skip
    elif policy:
        facts.add_row("policy", Text(str(policy["name"])))
    sets = group.get("configsets") or []
    facts.add_row(
        "configsets", Text(", ".join(f"{c['name']} v{c['version']}" for c in sets) or "-")
    )
    facts.add_row("stable", Text(stable or "-"))
    flight = Text(in_flight or "-")
    if in_flight is not None and rollout is not None:
        flight.append("  ")
        flight.append_text(phase_text(rollout["phase"]))
        flight.append(f", step {step_of(rollout)}")
    facts.add_row("in flight", flight)
    convergence = group.get("convergence")
    if convergence:
        n = convergence["nodes"]
        facts.add_row(
            "converged", Text(f"{n['committed']}/{n['targeted']} nodes on {convergence['release']}")
        )
    table = _table("node", "id", "committed", "on", "stale", "refused")
    for node in nodes:
        table.add_row(Text(node["name"]), Text(node["id"]),
                      *(Text(c) for c in _node_state(node, name, stable, in_flight)))  # fmt: skip
    total = int(detail.get("nodes_total", len(nodes)))
    parts: list[RenderableType] = [head, facts, Text(f"nodes ({total})", style="bold")]
    parts.append(table if nodes else Text("no enrolled nodes"))
    if total > len(nodes):
        parts.append(Text(f"… and {total - len(nodes)} more (`konorctl nodes` lists them all)"))
    return Group(*parts)
