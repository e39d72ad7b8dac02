"""``konorctl audit [--verify]``: the Center's hash-chained audit log.

``konorctl audit`` shows one page; ``konorctl audit export`` writes every event
of a range with a signed checkpoint (``audit_export.py``) and ``konorctl audit
verify FILE --trust-root root.json`` checks such a file offline (``audit_verify.py``).
"""

from __future__ import annotations

import json
from typing import Any

import click

from konorkestra.cli.client import CenterError
from konorkestra.cli.lazy import LazyGroup
from konorkestra.cli.output import center_options, client, print_json, print_table

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
@click.option("--limit", type=click.IntRange(1, 5000), default=200, show_default=True)
@click.pass_context
def audit(
    ctx: click.Context,
    center: str | None,
    token: str | None,
    output: str,
    verify: bool,
    after: int,
    limit: int,
) -> None:
    """Show audit events in order, or verify the chain on the Center (--verify).

    Subcommands: `export` (every event of a range with a signed checkpoint) and
    `verify FILE` (check an export offline).
    """
    if ctx.invoked_subcommand is not None:
        return
    with client(center, token) as c:
        if verify:
            result = c.get("/v1/audit/verify")
        else:
            events: list[dict[str, Any]] = c.get("/v1/audit", after=after, limit=limit)["events"]
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
    if output == "json":
        print_json(events)
        return
    print_table(
        None,
        ["seq", "at", "actor", "action", "details"],
        [
            (
                e["seq"],
                e["at"],
                e["actor"],
                e["action"],
                json.dumps(e["details"], sort_keys=True, separators=(",", ":")),
            )
            for e in events
        ],
        "no audit events",
    )
