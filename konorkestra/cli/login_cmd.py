"""``konorctl login``: check a Center URL, its CA and an API token, and save them
as a named context.

Example::

    konorctl login --name prod --center https://center:7400 \\
        --ca /etc/konorkestra/center-ca.pem --token kt_0123456789ab.secret

Invariants:

- Saves the context ``--name`` (default ``default``) in the file
  :mod:`konorkestra.cli.contexts` describes and makes it current, atomically and
  with mode 0600, because it holds a bearer token. Other contexts are kept; an
  old flat file is converted (its settings become the context ``default``).
- Nothing is saved unless the Center answers over TLS verified with ``--ca``
  (or the system CAs) and accepts the token.
- ``--center``, ``--ca`` and ``--token`` may come after ``login``, before it
  (``konorctl --center URL login``), or from ``KONORCTL_CENTER`` /
  ``KONORCTL_CA`` / ``KONORCTL_TOKEN``, in that order; the check waits
  ``--timeout`` seconds (before ``login``) or ``KONORCTL_TIMEOUT``, else 30.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from konorkestra.cli import contexts
from konorkestra.cli.client import CenterClient, Flags, Settings, timeout_seconds


def save_context(name: str, settings: Settings) -> Path:
    """Save ``settings`` as context ``name`` and make it current (0600, atomic)."""
    path = contexts.config_file()
    try:
        config = contexts.load(path)
    except contexts.ConfigError as exc:
        raise click.ClickException(f"{exc}; fix or remove it, then log in again") from None
    context = contexts.Context(settings.center, settings.token, settings.ca)
    contexts.save(path, config.with_context(name, context))
    return path


@click.command("login")
@click.option("--name", default=contexts.DEFAULT_NAME, show_default=True,
              help="Name of the context to save.")  # fmt: skip
@click.option("--center", default=None, metavar="URL",
              help="Center URL, e.g. https://center:7400 [env KONORCTL_CENTER].")  # fmt: skip
@click.option(
    "--ca",
    "ca_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CA certificate of the Center (its <data>/ca.pem) [env KONORCTL_CA].",
)
@click.option("--token", default=None, help="API token [env KONORCTL_TOKEN].")
@click.pass_context
def login(
    ctx: click.Context, name: str, center: str | None, ca_file: Path | None, token: str | None
) -> None:
    """Check a Center, its CA and a token; save them as a context.

    \b
    The context becomes current; later commands use it unless --context,
    KONORCTL_CONTEXT or other flags say otherwise. Nothing is saved unless
    the Center answers over verified TLS and accepts the token.

    \b
    Examples:
      konorctl login --center https://127.0.0.1:7400 \\
          --ca ~/.local/share/konorkestra/center/ca.pem \\
          --token kt_0123456789ab.SECRET
      konorctl login --name prod --center https://center:7400 \\
          --ca prod-ca.pem --token "$TOKEN"
    """
    given = Flags(center, token, str(ca_file) if ca_file else None)
    flags = given.over(Flags.from_meta(ctx.meta, contexts.BEFORE)).over(Flags.from_env(os.environ))
    if not flags.center:
        raise click.UsageError("give --center URL (or KONORCTL_CENTER)")
    if not flags.token:
        raise click.UsageError("give --token TOKEN (or KONORCTL_TOKEN)")
    if not flags.center.startswith("https://"):
        raise click.BadParameter("the Center URL must start with https://", param_hint="--center")
    ca = str(Path(flags.ca).resolve()) if flags.ca else None
    settings = Settings(flags.center.rstrip("/"), flags.token, ca)
    with CenterClient(settings, timeout=timeout_seconds(flags.timeout)) as client:
        client.get("/v1/join-tokens")  # TLS verified, token accepted (any role may read)
    path = save_context(name, settings)
    click.echo(f"logged in to {settings.center} as context {name!r}; saved in {path}")
