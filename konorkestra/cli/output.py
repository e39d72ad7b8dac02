"""Shared ``konorctl`` options (``--center``, ``--token``, ``-o``) and output helpers.

Invariant: ``-o json`` prints exactly one JSON document on stdout (for scripts);
``-o table`` prints rich tables for people. Errors go to stderr either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from konorkestra.cli.client import CenterClient, Settings

F = TypeVar("F", bound=Callable[..., Any])


def center_options(fn: F) -> F:
    """Add ``--center``, ``--token`` and ``-o/--output`` to a command."""
    fn = click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="Output format.",
    )(fn)
    fn = click.option("--token", default=None, help="API token [env KONORCTL_TOKEN].")(fn)
    fn = click.option("--center", default=None, help="Center URL [env KONORCTL_CENTER].")(fn)
    return fn


def client(center: str | None, token: str | None) -> CenterClient:
    return CenterClient(Settings.resolve(center=center, token=token))


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def print_table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], empty: str
) -> None:
    rows = list(rows)
    console = Console()
    if not rows:
        console.print(empty)
        return
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def short(sha: str | None) -> str:
    return "" if not sha else sha[:12]
