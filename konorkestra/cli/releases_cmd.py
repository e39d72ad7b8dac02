"""``konorctl releases [--group G]`` and ``konorctl release --group G --to NAME@VERSION,...``.

``releases`` shows each Group's latest listed Release with its convergence
(nodes committed of targeted, processes acked, failed, refused, stale).
"""

from __future__ import annotations

from typing import Any

import click

from konorkestra.cli.output import center_options, client, print_json, print_table, short


def _rows(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            r["id"],
            r["group"],
            r["sequence"],
            ", ".join(f"{c['name']}@{c['version']}" for c in r["configsets"]),
            r["policy"]["name"] + f" ({r['policy'].get('strategy', '')})",
            short(r["commit"]),
            r["created_by"],
            r["created_at"],
            _summary(r.get("convergence")),
            r.get("digest"),
            r.get("commit"),
            r.get("previous_id"),
            r.get("expires_at"),
            r.get("reason"),
        )
        for r in items
    ]


_COLUMNS = ["release", "group", "seq", "configsets", "policy", "commit", "by", "created",
            "convergence", "digest", "source commit", "previous", "expires", "reason"]  # fmt: skip
WIDE = ("digest", "source commit", "previous", "expires", "reason")
"""Columns only ``-o wide`` shows."""


def _summary(conv: dict[str, Any] | None) -> str:
    """``3/3 committed, 5 acked, 1 failed`` (the Center's ``Convergence.summary``)."""
    if not conv:
        return ""
    n, p = conv["nodes"], conv["processes"]
    parts = [f"{n['committed']}/{n['targeted']} committed", f"{p['applied']} acked"]
    extra = ((p["failed"], "failed"), (n["refused"], "refused"), (n["stale"], "stale"))
    return ", ".join(parts + [f"{k} {what}" for k, what in extra if k])


def _with_convergence(c: Any, items: list[dict[str, Any]]) -> None:
    """Add ``convergence`` to each Group's latest listed Release: one request per Group."""
    for group in sorted({r["group"] for r in items}):
        conv = c.get(f"/v1/groups/{group}", limit=1).get("convergence")
        for r in items:
            if conv and r["id"] == conv["release"]:
                r["convergence"] = conv


@click.command("releases")
@center_options
@click.option("--group", default=None, help="Only this Group.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def releases(
    center: str | None, token: str | None, output: str, group: str | None, limit: int
) -> None:
    """List Releases, newest first; each Group's latest with its convergence.

    \b
    Examples:
      konorctl releases --group checkout --limit 5
      konorctl releases -o wide   # + digest, full commit, previous, expires
      konorctl releases -o json | jq -r '.[0].id'
    """
    with client(center, token) as c:
        items = c.get("/v1/releases", group=group, limit=limit)["releases"]
        _with_convergence(c, items)
    if output == "json":
        print_json(items)
    else:
        print_table(None, _COLUMNS, _rows(items), "no releases", wide_only=WIDE)


@click.command("release")
@center_options
@click.option("--group", required=True, help="The Group to move.")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="NAME@VERSION[,NAME@VERSION...]",
    help="ConfigSet versions from accepted commits (checkout-api@12 or checkout-api@v12); "
    "the others keep their version.",
)
@click.option(
    "--strategy",
    type=click.Choice(["all-at-once", "canary", "linear"]),
    default=None,
    help="Override the Policy's strategy for this Release (e.g. a fast rollback).",
)
@click.option("--reason", default=None, help="Why; recorded in the audit log.")
def release(
    center: str | None,
    token: str | None,
    output: str,
    group: str,
    to: str,
    strategy: str | None,
    reason: str | None,
) -> None:
    """Create a Release by hand: how an operator rolls a Group back (or forward).

    \b
    Examples:
      konorctl release --group checkout --to checkout-api@11 \\
          --strategy all-at-once --reason "roll back: 5xx after v12"
      konorctl release --group web --to web-static@v8,web-api@v3
    """
    refs = [part.strip() for part in to.split(",") if part.strip()]
    if not refs:
        raise click.BadParameter("give at least one NAME@VERSION", param_hint="--to")
    body: dict[str, Any] = {"group": group, "configsets": refs}
    if strategy:
        body["strategy"] = strategy
    if reason:
        body["reason"] = reason
    with client(center, token) as c:
        created = c.post("/v1/releases", body)
    if output == "json":
        print_json(created)
    else:
        click.echo(
            f"created release {created['id']} (group {group}, sequence {created['sequence']})"
        )
