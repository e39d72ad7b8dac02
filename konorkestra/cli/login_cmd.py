"""``konorctl login``: check and remember the Center URL, its CA and an API token.

Example::

    konorctl login --center https://center:8443 --ca /etc/konorkestra/center-ca.crt \\
        --token kt_0123456789ab.secret

Invariants:

- Writes the file :mod:`konorkestra.cli.client` reads (keys ``center``, ``ca``,
  ``token``; ``$KONORCTL_CONFIG`` or ``~/.config/konorkestra/konorctl.yaml``),
  atomically and with mode 0600, because it holds a bearer token.
- Nothing is saved unless the Center answers over TLS verified with ``--ca`` and
  accepts the token.
"""

from __future__ import annotations

import io
from pathlib import Path

import click
from ruamel.yaml import YAML

from konorkestra.agent.store.fsutil import ensure_dir
from konorkestra.cli.client import CenterClient, Settings, config_file
from konorkestra.durable import atomic_write


def save_settings(settings: Settings) -> Path:
    """Write ``settings`` to the konorctl config file (0600, atomic)."""
    path = config_file()
    ensure_dir(path.parent)
    buf = io.StringIO()
    data = {"center": settings.center, "ca": settings.ca, "token": settings.token}
    YAML(typ="safe").dump(data, buf)
    atomic_write(path, buf.getvalue().encode(), 0o600)
    return path


@click.command("login")
@click.option("--center", required=True, help="Center URL, e.g. https://center:8443")
@click.option(
    "--ca",
    "ca_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CA certificate of the Center's server certificate (default: system CAs).",
)
@click.option("--token", required=True, envvar="KONORCTL_TOKEN", help="Operator API token.")
def login(center: str, ca_file: Path | None, token: str) -> None:
    """Check and save the Center URL, CA and API token for later commands."""
    if not center.startswith("https://"):
        raise click.BadParameter("the Center URL must start with https://", param_hint="--center")
    ca = str(ca_file.resolve()) if ca_file else None
    settings = Settings(center.rstrip("/"), token, ca)
    with CenterClient(settings) as client:
        client.get("/v1/join-tokens")  # TLS verified, token accepted (any role may read)
    path = save_settings(settings)
    click.echo(f"logged in to {settings.center}; settings saved to {path}")
