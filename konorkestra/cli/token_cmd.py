"""``konorctl token``: create, list and revoke join tokens for new nodes.

Example::

    konorctl token create --groups checkout,payments --labels dc=fra1 --ttl 15m
    konorctl token create --groups web --count 500 --print-join-command > joins.txt
    konorctl token list -o json
    konorctl token revoke ab12cd34

Exit codes: 0 done, 1 the Center refused or is unreachable, 2 usage errors.
``create`` prints the token once, the CA pin, and the ready-to-paste join command.
"""

from __future__ import annotations

from typing import Any

import click

from konorkestra.cli.output import center_options, client, print_json, print_table


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _labels(value: str | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in _csv(value or ""):
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--labels")
        labels[key] = val
    return labels


def _ttl_seconds(value: str) -> int:
    from konorkestra.model.durations import DurationError, parse_duration

    try:
        return parse_duration(value)
    except DurationError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from None


@click.group("token")
def token() -> None:
    """Join tokens: single-use credentials that let a node enroll.

    Not API tokens: those let people and tools use the Center's API
    (`konorctl api-token`).

    \b
    Example:
      konorctl token create --groups checkout --ttl 15m
      konorctl token list
    """


@token.command("create")
@center_options
@click.option("--groups", required=True, help="Comma-separated groups the node may receive.")
@click.option("--labels", default=None, help="Comma-separated key=value labels for the node.")
@click.option("--ttl", default="15m", show_default=True, help="Lifetime, e.g. 15m, 1h.")
@click.option("--node", "node_name", default=None, help="Bind the token to this node name.")
@click.option(
    "--count",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Make this many tokens of the same groups, labels and lifetime in one request "
    "(one join command per line with --print-join-command).",
)
@click.option(
    "--print-join-command",
    "join_only",
    is_flag=True,
    help="Print only the join command (for scripts: JOIN=$(konorctl token create ...)).",
)
def create(
    center: str | None,
    token: str | None,
    output: str,
    groups: str,
    labels: str | None,
    ttl: str,
    node_name: str | None,
    count: int | None,
    join_only: bool,
) -> None:
    """Create a single-use join token (or --count of them) and print the
    join command.

    \b
    Examples:
      konorctl token create --groups checkout,payments --labels dc=fra1
      konorctl token create --groups web --count 500 \\
          --print-join-command > joins.txt
    """
    if count is not None and count > 1 and node_name:
        raise click.BadParameter(
            "a token bound to --node cannot be made in bulk", param_hint="--count"
        )
    body: dict[str, Any] = {
        "groups": _csv(groups),
        "labels": _labels(labels),
        "ttl_seconds": _ttl_seconds(ttl),
    }
    if node_name:
        body["node_name"] = node_name
    if count is not None:
        body["count"] = count
    with client(center, token) as c:
        reply = c.post("/v1/join-tokens", body)
        url = c.settings.center
    if count is not None:
        _print_many(reply, url, output, join_only)
        return
    join = _join_command(url, reply)
    if join_only:
        click.echo(join)
        return
    if output == "json":
        print_json({**reply, "join_command": join})
        return
    click.echo(f"token:   {reply['token']}")
    click.echo(f"groups:  {', '.join(reply['groups'])}")
    click.echo(f"expires: {reply['expires_at']}  (single use)")
    click.echo(f"CA pin:  {reply['ca_pin']}")
    click.echo("\nOn the new node run:\n")
    click.echo(f"  {join}")


def _join_command(url: str, made: dict[str, Any]) -> str:
    return (
        f"konorkestra agent join --center {url} --token {made['token']} --ca-pin {made['ca_pin']}"
    )


def _print_many(reply: dict[str, Any], url: str, output: str, join_only: bool) -> None:
    """Many tokens: one join command per line, JSON, or a summary and the commands."""
    made = [{**t, "join_command": _join_command(url, t)} for t in reply["tokens"]]
    if join_only:
        for t in made:
            click.echo(t["join_command"])
        return
    if output == "json":
        print_json({**reply, "tokens": made})
        return
    first = made[0]
    click.echo(f"{len(made)} tokens, each single use")
    click.echo(f"groups:  {', '.join(first['groups'])}")
    click.echo(f"expires: {first['expires_at']}")
    click.echo(f"CA pin:  {reply['ca_pin']}")
    click.echo("\nOne per new node:\n")
    for t in made:
        click.echo(f"  {t['join_command']}")


@token.command("list")
@center_options
def list_tokens(center: str | None, token: str | None, output: str) -> None:
    """List join tokens (secrets are never shown again).

    \b
    Example:
      konorctl token list -o json
    """
    with client(center, token) as c:
        tokens = c.get("/v1/join-tokens")["tokens"]
    if output == "json":
        print_json(tokens)
        return
    print_table(
        None,
        ["id", "status", "groups", "node", "expires", "used by"],
        [
            (
                t["id"],
                t["status"],
                ",".join(t["groups"]),
                t["node_name"],
                t["expires_at"],
                t["used_by"],
            )
            for t in tokens
        ],
        "no join tokens",
    )


@token.command("revoke")
@center_options
@click.argument("token_id")
def revoke(center: str | None, token: str | None, output: str, token_id: str) -> None:
    """Revoke an unused join token.

    \b
    Example:
      konorctl token revoke ab12cd34
    """
    with client(center, token) as c:
        reply = c.request("DELETE", f"/v1/join-tokens/{token_id}").json()
    if output == "json":
        print_json(reply)
    else:
        click.echo(f"revoked join token {token_id}")
