"""``konorkestra demo``: the whole system, end to end, on this machine, in well under a minute.

Example::

    konorkestra demo            # run every step, clean up, exit 0 (1 if a step failed)
    konorkestra demo --keep     # ... then keep everything running and print how to play

In a temporary directory it creates a Git config repo from
``examples/config-repo``, starts a Center, creates a join token, joins and runs
an Agent, starts the sample SDK app, pushes a change and shows the app react
(with the measured push → app latency), shows the Center's view of the release
and of the process that applied it, and pushes an invalid change that is
refused while the app keeps running. See :mod:`konorkestra.demo.story`.
"""

from __future__ import annotations

import click
from rich.console import Console


@click.command("demo")
@click.option("--keep", is_flag=True, help="Keep everything running afterwards (until Ctrl-C).")
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> None:
    """Run Center, Agent and an SDK app end to end with real Git pushes."""
    from konorkestra.demo.story import run_demo

    ctx.exit(run_demo(Console(highlight=False), keep=keep))
