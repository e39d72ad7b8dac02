"""``konorctl config``: list, switch, show and delete the contexts of the config file.

Example::

    konorctl config get-contexts          # table; * marks the current one
    konorctl config use-context lab
    konorctl config view -o yaml          # tokens shown as kt_0123456789ab… only
    konorctl config delete-context old

Invariants:

* No command here talks to the Center; ``konorctl login --name NAME`` is the
  one that checks a context before saving it.
* ``config view`` never prints a token secret (:func:`contexts.redact`).
* Every write goes through :func:`contexts.save` (0600, atomic).
"""

from __future__ import annotations

from collections.abc import Callable

import click

from konorkestra.cli import contexts
from konorkestra.cli.output import output_format, output_option, print_json, print_table, yaml_text


def _load() -> contexts.Config:
    try:
        return contexts.load(contexts.config_file())
    except contexts.ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _change(edit: Callable[[contexts.Config], contexts.Config], done: str) -> None:
    """Load the file, apply ``edit`` (a ConfigError is a one-line failure), save, say ``done``."""
    try:
        changed = edit(_load())
    except contexts.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    contexts.save(contexts.config_file(), changed)
    click.echo(done)


@click.group("config")
def config() -> None:
    """Contexts of the config file: which Center, CA and token to use.

    \b
    The file is $KONORCTL_CONFIG, else
    $XDG_CONFIG_HOME/konorkestra/konorctl.yaml, else
    ~/.config/konorkestra/konorctl.yaml (mode 0600). Add a context
    with `konorctl login --name NAME`; pick one per command with
    --context NAME or KONORCTL_CONTEXT.

    \b
    Examples:
      konorctl config get-contexts
      konorctl config use-context prod
      konorctl config view
    """


@config.command("get-contexts")
@output_option
def get_contexts(output: str) -> None:
    """List the contexts; * marks the current one.

    \b
    Example:
      konorctl config get-contexts -o json
    """
    cfg = _load()
    if output == "json":
        print_json(contexts.to_data(cfg, secrets=False))
        return
    rows = [
        ("*" if name == cfg.current else "", name, c.center or "", c.ca or "",
         "" if c.token is None else contexts.redact(c.token))
        for name, c in sorted(cfg.contexts.items())
    ]  # fmt: skip
    print_table(None, ["current", "name", "center", "ca", "token"], rows,
                "no contexts: run konorctl login --name NAME")  # fmt: skip


@config.command("use-context")
@click.argument("name")
def use_context(name: str) -> None:
    """Make NAME the current context.

    \b
    Example:
      konorctl config use-context prod
    """
    _change(lambda cfg: cfg.use(name), f"current context: {name}")


@config.command("view")
@output_option
def view(output: str) -> None:
    """Show the config file, tokens redacted (kt_0123456789ab…).

    \b
    Example:
      konorctl config view -o json
    """
    data = contexts.to_data(_load(), secrets=False)
    if output_format() == "json":
        print_json(data)
        return
    click.echo(yaml_text(data), nl=False)


@config.command("delete-context")
@click.argument("name")
def delete_context(name: str) -> None:
    """Remove the context NAME from the config file.

    \b
    Example:
      konorctl config delete-context old-lab
    """
    _change(lambda cfg: cfg.without(name), f"deleted context {name}")
