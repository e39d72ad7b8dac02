"""``konorctl audit [--verify]``: the Center's hash-chained audit log.

``konorctl audit`` shows one page, newest first (``GET /v1/audit?order=desc``);
``konorctl audit export`` writes every event of a range with a signed checkpoint
(``audit_export.py``) and ``konorctl audit verify FILE --trust-root root.json``
checks such a file offline (``audit_verify.py``).

Invariants:

* ``--limit N`` always selects the N newest events of the range (``--after``,
  ``--before``); ``--reverse`` only turns their order around (oldest first).
* One line per event: on a terminal the time is to the second and the details
  (``key=value``) are shortened to what the width leaves; piped or ``-o wide``
  everything is whole; ``-o json`` prints the API's events.
"""

from __future__ import annotations

from typing import Any

import click

from konorkestra.cli.cells import details_cell, last_column_width
from konorkestra.cli.client import CenterError
from konorkestra.cli.lazy import LazyGroup
from konorkestra.cli.output import (
    center_options,
    client,
    console,
    output_format,
    print_json,
    print_table,
)
from konorkestra.cli.rollout_view import when

SUBCOMMANDS = {
    "export": "konorkestra.cli.audit_export:export",
    "verify": "konorkestra.cli.audit_verify:verify",
}


@click.group(
    "audit", cls=LazyGroup, lazy=SUBCOMMANDS, invoke_without_command=True, no_args_is_help=False
)
@center_options
@click.option(
    "--verify", "verify", is_flag=True, help="Recompute the hash chain; exit 1 if broken."
)
@click.option("--after", type=click.IntRange(0), default=0, help="Only events after this seq.")
@click.option("--before", type=click.IntRange(1), default=None, help="Only events before this seq.")
@click.option(
    "--limit",
    type=click.IntRange(1, 5000),
    default=200,
    show_default=True,
    help="Show the N newest events (of the range).",
)
@click.option("--reverse", is_flag=True, help="Oldest first.")
@click.pass_context
def audit(
    ctx: click.Context,
    center: str | None,
    token: str | None,
    output: str,
    verify: bool,
    after: int,
    before: int | None,
    limit: int,
    reverse: bool,
) -> None:
    """Show the newest audit events first, or verify the chain (--verify).

    \b
    Subcommands:
      export   every event of a range, with a signed checkpoint
      verify   check an export offline

    \b
    Example:
      konorctl audit --limit 5            # the five newest events
      konorctl audit --reverse            # oldest first
      konorctl audit --before 120         # the page before seq 120
      konorctl audit --verify
    """
    if ctx.invoked_subcommand is not None:
        return
    with client(center, token) as c:
        if verify:
            result = c.get("/v1/audit/verify")
        else:
            events: list[dict[str, Any]] = c.get(
                "/v1/audit", order="desc", after=after, before=before, limit=limit
            )["events"]
    if verify:
        if output == "json":
            print_json(result)
        elif result["ok"]:
            click.echo(f"audit chain verified: {result['count']} events, head {result['head']}")
        if not result["ok"]:
            raise CenterError(
                f"audit chain broken at event {result['first_bad']}: {result['reason']}"
            )
        return
    if reverse:
        events.reverse()
    if output == "json":
        print_json(events)
        return
    out = console()
    tty = out.is_terminal and output_format() != "wide"
    rows = [(str(e["seq"]), when(e["at"]) if tty else e["at"], e["actor"], e["action"])
            for e in events]  # fmt: skip
    header = ("seq", "at", "actor", "action")
    room = last_column_width([header, *rows], out.width) if tty else None
    print_table(
        None,
        [*header, "details"],
        [(*row, details_cell(e["details"], room)) for row, e in zip(rows, events, strict=True)],
        "no audit events",
    )
