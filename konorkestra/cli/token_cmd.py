"""``konorctl token``: create, list and revoke join tokens for new nodes.

Example::

    konorctl token create --groups checkout,payments --labels dc=fra1 --ttl 15m
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
    """Join tokens: single-use credentials that let a node enroll."""


@token.command("create")
@center_options
@click.option("--groups", required=True, help="Comma-separated groups the node may receive.")
@click.option("--labels", default=None, help="Comma-separated key=value labels for the node.")
@click.option("--ttl", default="15m", show_default=True, help="Lifetime, e.g. 15m, 1h.")
@click.option("--node", "node_name", default=None, help="Bind the token to this node name.")
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
    join_only: bool,
) -> None:
    """Create a single-use join token and print the join command."""
    body: dict[str, Any] = {
        "groups": _csv(groups),
        "labels": _labels(labels),
        "ttl_seconds": _ttl_seconds(ttl),
    }
    if node_name:
        body["node_name"] = node_name
    with client(center, token) as c:
        reply = c.post("/v1/join-tokens", body)
        url = c.settings.center
    join = (
        f"konorkestra agent join --center {url} --token {reply['token']} --ca-pin {reply['ca_pin']}"
    )
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


@token.command("list")
@center_options
def list_tokens(center: str | None, token: str | None, output: str) -> None:
    """List join tokens (secrets are never shown again)."""
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
    """Revoke an unused join token."""
    with client(center, token) as c:
        reply = c.request("DELETE", f"/v1/join-tokens/{token_id}").json()
    if output == "json":
        print_json(reply)
    else:
        click.echo(f"revoked join token {token_id}")
