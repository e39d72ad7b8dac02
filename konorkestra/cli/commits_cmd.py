"""``konorctl commits`` (ingested commits) and ``konorctl commits show SHA`` (diagnostics).

Invariant: the list shows a rejected commit's first diagnostic inline, shortened
to the terminal's width on a terminal and whole when piped, always with its
``(+N more)``; ``commits show`` prints every diagnostic.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.text import Text

from konorkestra.cli.cells import diagnostic_cell, fit, last_column_width
from konorkestra.cli.output import (
    center_options,
    client,
    console,
    output_format,
    print_json,
    print_table,
    short,
)
from konorkestra.cli.rollout_view import when
from konorkestra.repo.diagnostics import location

SUBJECT = 30
"""How much of a subject a terminal shows (piped: all of it)."""


@click.group("commits", invoke_without_command=True)
@center_options
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.pass_context
def commits(
    ctx: click.Context, center: str | None, token: str | None, output: str, limit: int
) -> None:
    """List the commits the Center ingested, newest first, accepted or rejected.

    A rejected commit shows its first error inline (file:line: message, and
    how many more); `commits show SHA` prints them all with their hints.
    -o wide adds the error count and the author.

    \b
    Example:
      konorctl commits --limit 5
      konorctl commits show 3f2a9c0d
    """
    ctx.obj = {"center": center, "token": token, "output": output}
    if ctx.invoked_subcommand is not None:
        return
    with client(center, token) as c:
        items = c.get("/v1/commits", limit=limit)["commits"]
    if output == "json":
        print_json(items)
        return
    out = console()
    wide = output_format() == "wide"
    tty = out.is_terminal and not wide
    header = ("commit", "status", "committed", "subject")
    rows = [
        (short(i["sha"]), i["status"], when(i["committed_at"]) if tty else i["committed_at"],
         fit(i["subject"], SUBJECT if tty else None))
        for i in items
    ]  # fmt: skip
    room = last_column_width([header, *rows], out.width) if tty else None
    print_table(
        None,
        [*header, "why", "errors", "author"],
        [
            (*row, _why(i, room), i["errors"], i["author"])
            for row, i in zip(rows, items, strict=True)
        ],
        "no commits ingested yet",
        wide_only=("errors", "author"),
    )


def _why(item: dict[str, Any], width: int | None) -> str:
    """A rejected commit's first diagnostic (``first_diagnostic`` of ``/v1/commits``)."""
    if item["status"] != "rejected":
        return ""
    return diagnostic_cell(item.get("first_diagnostic"), item.get("diagnostics_count", 0), width)


@commits.command("show")
@click.argument("sha")
@center_options
@click.pass_context
def show(ctx: click.Context, sha: str, center: str | None, token: str | None, output: str) -> None:
    """Show one commit: status, diagnostics (file:line, message, hint) and its releases.

    \b
    Example:
      konorctl commits show 3f2a9c0d
    """
    parent = ctx.obj or {}
    center, token = center or parent.get("center"), token or parent.get("token")
    if parent.get("output") == "json":
        output = "json"
    with client(center, token) as c:
        item = c.get(f"/v1/commits/{sha}")
    if output == "json":
        print_json(item)
        return
    console = Console(highlight=False)
    colour = "green" if item["status"] == "accepted" else "red"
    console.print(Text.assemble("commit ", (item["sha"], "bold"), " ", (item["status"], colour)))
    console.print(Text(f"  {item['subject']} — {item['author']}, {item['committed_at']}"))
    for d in item["diagnostics"]:
        sev = "red" if d["severity"] == "error" else "yellow"
        console.print(
            Text.assemble(
                f"{location(d)}: ", (d["severity"], sev), f": {d['message']} [{d['code']}]"
            )
        )
        if d.get("hint"):
            console.print(Text(f"    hint: {d['hint']}"))
    if item["releases"]:
        print_table(
            "releases",
            ["release", "group", "sequence"],
            [(r["id"], r["group"], r["sequence"]) for r in item["releases"]],
            "",
        )
    elif item["status"] == "accepted":
        console.print("no Group changed: no release")
