"""``konorctl nodes``: list, show and revoke enrolled nodes.

Example::

    konorctl nodes
    konorctl nodes show 3f2a9c0d1e7b4a55 -o json
    konorctl nodes show web-1                 # a node name works where an id does
    konorctl nodes revoke 3f2a9c0d1e7b4a55

Exit codes: 0 done, 1 the Center refused or is unreachable, 2 usage errors.
A revoked node's certificate stops working on its next request.
"""

from __future__ import annotations

from typing import Any

import click

from konorkestra.cli.client import CenterClient, CenterError
from konorkestra.cli.output import center_options, client, print_json, print_table

WIDE = ("labels", "cert serial", "enrolled", "revoked")
"""Columns of the node list only ``-o wide`` shows."""


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


@click.group("nodes", invoke_without_command=True)
@center_options
@click.pass_context
def nodes(ctx: click.Context, center: str | None, token: str | None, output: str) -> None:
    """Enrolled nodes (without a subcommand: list them).

    \b
    Examples:
      konorctl nodes                  # id, name, status, groups, cert, seen
      konorctl nodes -o wide          # + labels, cert serial, enrolled, revoked
      konorctl nodes -o yaml
      konorctl nodes show web-01
      konorctl nodes revoke web-01
    """
    if ctx.invoked_subcommand is not None:
        return
    with client(center, token) as c:
        found = c.get("/v1/nodes")["nodes"]
    if output == "json":
        print_json(found)
        return
    print_table(
        None,
        ["id", "name", "status", "groups", "cert expires", "last seen", *WIDE],
        [
            (
                n["id"],
                n["name"],
                n["status"],
                ",".join(n["groups"]),
                n["cert_not_after"],
                n["last_seen"],
                _labels(n.get("labels") or {}),
                n.get("cert_serial"),
                n.get("created_at"),
                n.get("revoked_at"),
            )
            for n in found
        ],
        "no nodes enrolled",
        wide_only=WIDE,
    )


def _show(node: dict[str, Any]) -> None:
    labels = _labels(node["labels"]) or "-"
    for key, value in (
        ("id", node["id"]),
        ("name", node["name"]),
        ("status", node["status"]),
        ("groups", ",".join(node["groups"])),
        ("labels", labels),
        ("cert serial", node["cert_serial"]),
        ("cert expires", node["cert_not_after"]),
        ("revoked at", node["revoked_at"] or "-"),
        ("last seen", node["last_seen"] or "-"),
        ("enrolled at", node["created_at"]),
    ):
        click.echo(f"{key + ':':14}{value}")
    _show_state(node.get("state", []))


def _show_state(state: list[dict[str, Any]]) -> None:
    """Per group: the applied release, and each process that saw a release with its ack."""
    for g in state:
        applied = g.get("applied")
        line = f"{applied['release']} (seq {applied['sequence']})" if applied else "none applied"
        if g.get("stale"):
            line += "  STALE"
        click.echo(f"\ngroup {g['group']}: {line}")
        refused = g.get("refused")
        if refused:
            click.echo(f"  refused {refused['release']}: {refused['code']}: {refused['reason']}")
        for p in g.get("processes", []):
            ack = p.get("ack")
            acked = "no ack" if not ack else f"ack {ack['status']}"
            if ack and ack.get("error"):
                acked += f": {ack['error']}"
            if ack and ack.get("release") != p.get("release"):
                acked += f" (of {ack['release']})"
            who = f"pid {p['pid']} uid {p['uid']} {p.get('exe') or '?'}"
            client = f" [{p['client']}]" if p.get("client") else ""
            click.echo(f"  {who}{client}: saw {p.get('release') or '-'}, {acked}")


def _node_id(c: CenterClient, ref: str) -> str:
    """The id of the node ``ref`` names: an id as is, else the one node with that name."""
    found = c.get("/v1/nodes")["nodes"]
    if any(n["id"] == ref for n in found):
        return ref
    named = [n for n in found if n["name"] == ref]
    if len(named) == 1:
        return str(named[0]["id"])
    if named:
        ids = ", ".join(n["id"] for n in named)
        raise CenterError(f"{len(named)} nodes are named {ref!r} ({ids}); give the id")
    raise CenterError(f"no node with id or name {ref!r}; `konorctl nodes` lists them")


@nodes.command("show")
@center_options
@click.argument("node_id", metavar="NODE")
def show(center: str | None, token: str | None, output: str, node_id: str) -> None:
    """Show one node (by id or name): scope, certificate, and per group the applied
    release and every process that saw a release, with its ack.

    \b
    Example:
      konorctl nodes show web-01 -o json"""
    with client(center, token) as c:
        node = c.get(f"/v1/nodes/{_node_id(c, node_id)}")
    if output == "json":
        print_json(node)
    else:
        _show(node)


@nodes.command("revoke")
@center_options
@click.argument("node_id", metavar="NODE")
def revoke(center: str | None, token: str | None, output: str, node_id: str) -> None:
    """Revoke a node (by id or name): its certificate is refused from its
    next request on.

    \b
    Example:
      konorctl nodes revoke web-01
    """
    with client(center, token) as c:
        node = c.post(f"/v1/nodes/{_node_id(c, node_id)}/revoke", {})
    if output == "json":
        print_json(node)
    else:
        click.echo(f"revoked node {node['id']} ({node['name']}) at {node['revoked_at']}")
