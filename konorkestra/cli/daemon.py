"""``konorkestra``: the daemons (center, agent) and the demo."""

from __future__ import annotations

import click

from konorkestra import __version__
from konorkestra.cli.lazy import LazyGroup

COMMANDS: dict[str, str] = {
    "demo": "konorkestra.cli.demo:demo",
    "center": "konorkestra.cli.center:center",
    "agent": "konorkestra.cli.agent_cmd:agent",
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="konorkestra")
def cli() -> None:
    """Run Konorkestra's Center, Agent, or the end-to-end demo."""


def main() -> None:
    """Console-script entry point."""
    cli()
