"""``konorctl groups`` and ``konorctl groups show G``: each Group's Releases and nodes.

Example::

    konorctl groups                       # group, stable, in flight, phase, nodes, converged
    konorctl groups --watch               # redraw every 2 s until Ctrl-C
    konorctl groups show checkout -o json

Invariants:

* Read only, ``viewer`` is enough. ``groups`` asks ``/v1/groups``,
  ``/v1/rollouts`` and ``/v1/nodes`` once and ``/v1/groups/{name}`` once per
  Group (its convergence); ``groups show G`` asks ``/v1/groups/G``,
  ``/v1/rollouts/G``, ``/v1/nodes`` and ``/v1/nodes/{id}`` for each of G's
  nodes (at most :data:`MAX_NODES`).
* What is shown is :mod:`konorkestra.cli.groups_view`'s (pure); ``-o json``
  prints one JSON document (with ``--watch``: one line of JSON per change).
* ``--watch`` is :func:`konorkestra.cli.watch.watch`: redraw on a terminal,
  a new block only on a change when piped, exit 0 on Ctrl-C.
* Exit codes: 0 done, 1 the Center refused or is unreachable (or no such
  Group), 2 usage errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import click

from konorkestra.cli.client import CenterClient, CenterError
from konorkestra.cli.groups_view import (
    GroupLine,
    group_lines,
    group_view,
    groups_table,
    members,
)
from konorkestra.cli.output import center_options, client
from konorkestra.cli.watch import INTERVAL, show_or_watch

MAX_NODES = 200
"""``groups show`` reads the state of at most this many nodes (``konorctl nodes`` lists all)."""


def _watch_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = INTERVAL(fn)
    return click.option("--watch", "-w", "watching", is_flag=True, help="Redraw until Ctrl-C.")(fn)


def _name(name: str) -> str:
    return quote(name, safe="")


def load_groups(c: CenterClient) -> list[GroupLine]:
    """Every Group's row of ``konorctl groups``."""
    groups = c.get("/v1/groups")["groups"]
    rollouts = c.get("/v1/rollouts")["rollouts"]
    nodes = c.get("/v1/nodes")["nodes"]
    convergence = {
        g["name"]: c.get(f"/v1/groups/{_name(g['name'])}", limit=1)["convergence"] for g in groups
    }
    return group_lines(groups, rollouts, nodes, convergence)


def _rollout(c: CenterClient, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = c.get(f"/v1/rollouts/{_name(name)}")
    except CenterError as exc:
        if exc.status == 404:
            return None
        raise
    found.pop("history", None)
    return found


def load_group(c: CenterClient, name: str) -> dict[str, Any]:
    """``groups show``'s document: ``group``, ``rollout`` (or None), ``nodes`` with
    their state in this Group, and ``nodes_total`` (more than shown past :data:`MAX_NODES`)."""
    group = c.get(f"/v1/groups/{_name(name)}", limit=5)
    nodes = members(name, c.get("/v1/nodes")["nodes"])
    detailed = [c.get(f"/v1/nodes/{_name(n['id'])}") for n in nodes[:MAX_NODES]]
    for node in detailed:
        node["state"] = [s for s in node.get("state", []) if s["group"] == name]
    return {"group": group, "rollout": _rollout(c, name), "nodes": detailed,
            "nodes_total": len(nodes)}  # fmt: skip


def _lines_json(lines: list[GroupLine]) -> list[dict[str, Any]]:
    return [line.to_json() for line in lines]


@click.group("groups", invoke_without_command=True)
@center_options
@_watch_options
@click.pass_context
def groups(
    ctx: click.Context,
    center: str | None,
    token: str | None,
    output: str,
    watching: bool,
    interval: float,
) -> None:
    """List Groups: stable and in-flight Release, rollout phase, nodes.

    \b
    Columns:
      stable     the Release the Group's nodes fall back to
      in flight  the Release being rolled out (until its rollout ends)
      phase      the rollout's phase, and its step while in flight
      nodes      the Group's enrolled, active nodes
      converged  nodes on the latest Release / nodes it targets

    \b
    --watch redraws every --interval seconds until Ctrl-C (exit 0); piped,
    it prints the table again only when it changed (-o json: one JSON line).

    \b
    Example:
      konorctl groups
      konorctl groups --watch --interval 5
      konorctl groups show checkout
    """
    ctx.obj = {"center": center, "token": token, "output": output}
    if ctx.invoked_subcommand is not None:
        return
    with client(center, token) as c:
        show_or_watch(lambda: load_groups(c), groups_table, watching=watching, interval=interval,
                      as_json=_lines_json if output == "json" else None)  # fmt: skip


def _same(value: dict[str, Any]) -> dict[str, Any]:
    return value


@groups.command("show")
@center_options
@_watch_options
@click.argument("name", metavar="GROUP")
@click.pass_context
def show(
    ctx: click.Context,
    center: str | None,
    token: str | None,
    output: str,
    watching: bool,
    interval: float,
    name: str,
) -> None:
    """Show one Group: definition, Policy, stable and in-flight Release,
    and each of its nodes with the Release it committed.

    \b
    Example:
      konorctl groups show checkout
      konorctl groups show checkout -o json
      konorctl groups show checkout --watch
    """
    parent = ctx.obj or {}
    center, token = center or parent.get("center"), token or parent.get("token")
    if parent.get("output") == "json":
        output = "json"
    with client(center, token) as c:
        show_or_watch(lambda: load_group(c, name), group_view, watching=watching,
                      interval=interval, as_json=_same if output == "json" else None)  # fmt: skip
