"""``konorkestra demo`` (placeholder): validate and resolve the bundled example repo.

Example::

    konorkestra demo        # exit 0 when examples/config-repo is valid

A later issue replaces this with the full end-to-end demo (Center, Agents,
SDKs). Invariant: it only reads ``examples/config-repo`` from the checkout the
package was installed from (editable install), and writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

import konorkestra
from konorkestra.cli.validate import render_text
from konorkestra.repo import has_errors, load_worktree, resolve, validate


def example_repo() -> Path:
    """``examples/config-repo`` of the checkout this package runs from."""
    return Path(konorkestra.__file__).resolve().parent.parent / "examples" / "config-repo"


@click.command("demo")
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Validate the bundled example config repo and show what would be released."""
    root = example_repo()
    console = Console(highlight=False, soft_wrap=True)
    if not root.is_dir():
        click.echo(f"konorkestra demo: error: {root} not found (run from a checkout)", err=True)
        ctx.exit(2)
    snapshot = load_worktree(root)
    diagnostics = validate(snapshot)
    console.rule("[bold]konorkestra demo[/]: validating examples/config-repo")
    render_text(console, snapshot, str(root), diagnostics)
    if has_errors(diagnostics):
        ctx.exit(1)
    table = Table(title="What the Center would release", title_justify="left")
    for column in ("group", "policy", "configset", "digest", "files"):
        table.add_column(column, no_wrap=column != "files")
    for group in resolve(snapshot).groups.values():
        for cs in group.configsets:
            table.add_row(
                group.name,
                group.policy.name,
                cs.key,
                cs.digest[7:19] + "…",
                ", ".join(cs.files) or "-",
            )
    console.print(table)
