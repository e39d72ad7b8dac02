"""``konorctl api-token``: create, list and revoke API tokens for people and tools.

Example::

    konorctl api-token create --role viewer --name grafana   # prints the secret once
    konorctl api-token list -o json                          # never a secret
    konorctl api-token revoke 3f2a9c0d1e7b

Invariants:

* These are the Center's API tokens (``/v1/tokens``, admin only): a role of
  viewer < operator < admin, used as ``--token`` / ``KONORCTL_TOKEN``. Join
  tokens, which let a node enroll once, are ``konorctl token``.
* ``create`` prints the secret exactly once, and to stderr a warning to store
  it (the Center keeps only its hash); ``list`` and ``revoke`` never print one.
  ``create -o json`` prints the API's answer, secret included, as one document.
* API tokens do not expire: revoke one to end it.
* Exit codes: 0 done, 1 the Center refused or is unreachable, 2 usage errors.
"""

from __future__ import annotations

from urllib.parse import quote

import click

from konorkestra.cli.output import center_options, client, print_json, print_table

ROLES = ("viewer", "operator", "admin")


@click.group("api-token")
def api_token() -> None:
    """API tokens: who may read (viewer), steer (operator) or administer
    (admin) the Center. Needs an admin token.

    Not join tokens: those let a new node enroll once (`konorctl token`).

    \b
    Example:
      konorctl api-token create --role viewer --name grafana
      konorctl api-token list
      konorctl api-token revoke 3f2a9c0d1e7b
    """


@api_token.command("create")
@center_options
@click.option("--role", type=click.Choice(ROLES), required=True, help="What it may do.")
@click.option("--name", "name", required=True, help="Who or what uses it (1-100 chars).")
def create(center: str | None, token: str | None, output: str, role: str, name: str) -> None:
    """Create an API token and print its secret, once.

    The Center keeps only a hash: store the secret now (a password manager,
    a secret store). It does not expire; `revoke` ends it.

    \b
    Example:
      konorctl api-token create --role operator --name ci-deploy
      KONORCTL_TOKEN=$(konorctl api-token create --role viewer \\
          --name grafana -o json | jq -r .token)
    """
    if not 1 <= len(name) <= 100:
        raise click.BadParameter("1 to 100 characters", param_hint="--name")
    with client(center, token) as c:
        made = c.post("/v1/tokens", {"name": name, "role": role})
    click.echo("Store this token now: it is shown only once and cannot be recovered.", err=True)
    if output == "json":
        print_json(made)
        return
    click.echo(f"token: {made['token']}")
    click.echo(f"id:    {made['id']}  (name {made['name']}, role {made['role']})")


@api_token.command("list")
@center_options
def list_tokens(center: str | None, token: str | None, output: str) -> None:
    """List API tokens: id, name, role, created, revoked (never a secret).

    \b
    Example:
      konorctl api-token list -o json
    """
    with client(center, token) as c:
        found = c.get("/v1/tokens")["tokens"]
    if output == "json":
        print_json(found)
        return
    print_table(
        None,
        ["id", "name", "role", "created", "revoked"],
        [(t["id"], t["name"], t["role"], t["created_at"], t["revoked_at"] or "") for t in found],
        "no API tokens",
    )


@api_token.command("revoke")
@center_options
@click.argument("token_id", metavar="ID")
def revoke(center: str | None, token: str | None, output: str, token_id: str) -> None:
    """Revoke the API token ID (from `list`): it stops working at once.

    \b
    Example:
      konorctl api-token revoke 3f2a9c0d1e7b
    """
    with client(center, token) as c:
        reply = c.request("DELETE", f"/v1/tokens/{quote(token_id, safe='')}").json()
    if output == "json":
        print_json(reply)
    else:
        click.echo(f"revoked API token {token_id}")
