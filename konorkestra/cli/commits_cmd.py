"""``konorctl commits`` (ingested commits) and ``konorctl commits show SHA`` (diagnostics)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape

from konorkestra.cli.output import center_options, client, print_json, print_table, short
from konorkestra.repo.diagnostics import location


@click.group("commits", invoke_without_command=True)
@center_options
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.pass_context
def commits(
    ctx: click.Context, center: str | None, token: str | None, output: str, limit: int
) -> None:
    """List the commits the Center ingested, newest first, accepted or rejected."""
    ctx.obj = {"center": center, "token": token, "output": output}
    if ctx.invoked_subcommand is not None:
        return
    with client(center, token) as c:
        items = c.get("/v1/commits", limit=limit)["commits"]
    if output == "json":
        print_json(items)
        return
    print_table(
        None,
        ["commit", "status", "errors", "author", "committed", "subject"],
        [
            (
                short(i["sha"]),
                i["status"],
                i["errors"],
                i["author"],
                i["committed_at"],
                i["subject"],
            )
            for i in items
        ],
        "no commits ingested yet",
    )


@commits.command("show")
@click.argument("sha")
@center_options
@click.pass_context
def show(ctx: click.Context, sha: str, center: str | None, token: str | None, output: str) -> None:
    """Show one commit: status, diagnostics (file:line, message, hint) and its releases."""
    parent = ctx.obj or {}
    center, token = center or parent.get("center"), token or parent.get("token")
    if parent.get("output") == "json":
        output = "json"
    with client(center, token) as c:
        item = c.get(f"/v1/commits/{sha}")
    if output == "json":
        print_json(item)
        return
    console = Console()
    colour = "green" if item["status"] == "accepted" else "red"
    console.print(f"commit [bold]{item['sha']}[/] [{colour}]{item['status']}[/]")
    console.print(f"  {escape(item['subject'])} — {escape(item['author'])}, {item['committed_at']}")
    for d in item["diagnostics"]:
        sev = "red" if d["severity"] == "error" else "yellow"
        console.print(
            f"{escape(location(d))}: [{sev}]{d['severity']}[/]: {escape(d['message'])} "
            + escape(f"[{d['code']}]"),
            highlight=False,
        )
        if d.get("hint"):
            console.print(f"    hint: {escape(d['hint'])}", highlight=False)
    if item["releases"]:
        print_table(
            "releases",
            ["release", "group", "sequence"],
            [(r["id"], r["group"], r["sequence"]) for r in item["releases"]],
            "",
        )
    elif item["status"] == "accepted":
        console.print("no Group changed: no release")
