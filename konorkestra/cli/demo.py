"""``konorkestra demo``: the whole system, end to end, on this machine, in well under a minute.

Example::

    konorkestra demo            # run every step, clean up, exit 0 (1 if a step failed)
    konorkestra demo --keep     # ... then keep everything running and print how to play

In a temporary directory it creates a Git config repo from
``examples/config-repo`` (the canary Policy's bakes shortened to seconds),
starts a Center, joins five Agents with the sample SDK app on each, and pushes
a change that reaches the canary node only; after the bake it approves the
next waves with ``konorctl rollout approve`` until every node has it; an
invalid change is refused; a release whose reload fails in the canary's app is
rolled back automatically, and a who-saw-what table shows that no other app
ever saw it. See :mod:`konorkestra.demo.story`.
"""

from __future__ import annotations

import click
from rich.console import Console


@click.command("demo")
@click.option("--keep", is_flag=True, help="Keep everything running afterwards (until Ctrl-C).")
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> None:
    """Run a Center, five Agents and their SDK apps end to end with real Git pushes:
    a canary, an approval, an automatic rollback."""
    from konorkestra.demo.stack import examples_dir

    seed = examples_dir()
    if not (seed / "config-repo").is_dir():
        raise click.ClickException(
            f"the demo needs the examples of a source checkout ({seed} is not there): "
            "git clone the project and run `make demo` in it"
        )
    from konorkestra.demo.story import run_demo

    ctx.exit(run_demo(Console(highlight=False), keep=keep))
