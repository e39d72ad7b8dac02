"""Shared ``konorctl`` options (``--center``, ``--ca``, ``--token``, ``--context``,
``--timeout``, ``-o``) and output helpers.

Example::

    @click.command("things")
    @center_options
    def things(center: str | None, token: str | None, output: str) -> None:
        with client(center, token) as c:
            items = c.get("/v1/things")["things"]
        if output == "json":
            print_json(items)            # JSON or YAML, as -o asked
        else:
            print_table(None, ["name", "detail"], rows, "no things", wide_only=["detail"])

Invariants:

* ``-o`` is one of :data:`FORMATS`. A command's ``output`` parameter is
  ``"json"`` for the machine formats (``json``, ``yaml``) and ``"table"`` for
  the human ones (``table``, ``wide``); :func:`print_json` renders the machine
  format asked for and :func:`print_table` shows the ``wide_only`` columns only
  under ``-o wide``. So every command that checks ``output == "json"`` gets
  YAML and wide for free. :func:`output_format` gives the exact choice.
* ``-o json`` prints exactly one JSON document on stdout, ``-o yaml`` one YAML
  document (for scripts); errors go to stderr either way.
* Flags after the subcommand beat the same flags before it (``konorctl -o json
  releases -o yaml`` prints YAML); see :mod:`konorkestra.cli.client` for the
  rest of the order (environment, context, default).
* Cells are plain text: a value like ``[wip] fix`` or ``[/]`` prints as
  itself, never read as rich markup (:func:`cell`).
* On a terminal tables use its width; when stdout is not a terminal they never
  wrap or cut a cell: one row per line, as wide as the content.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from konorkestra.cli.client import CenterClient, Settings
from konorkestra.cli.contexts import AFTER, BEFORE, remember

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "wide", "json", "yaml")
PIPE_WIDTH = 1_000_000
"""Console width when stdout is not a terminal: wide enough that nothing wraps."""

_FORMAT = "konorctl.output"


def _output(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    # nearest wins: this command's flag, a parent group's, the one before all
    chosen = value or ctx.meta.get(_FORMAT) or ctx.meta.get(BEFORE, {}).get("output") or "table"
    ctx.meta[_FORMAT] = chosen
    return "json" if chosen in ("json", "yaml") else "table"


def output_format() -> str:
    """The ``-o`` format of the running command (``table`` outside one)."""
    ctx = click.get_current_context(silent=True)
    return str(ctx.meta.get(_FORMAT, "table")) if ctx is not None else "table"


def output_option(fn: F) -> F:
    """Add ``-o/--output``; the command receives ``output`` ("json" or "table")."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice(FORMATS),
        default=None,
        callback=_output,
        help="Output format: table (default), wide, json, yaml.",
    )(fn)


_CONNECTION = (
    ("center", "URL", True, "Center URL [env KONORCTL_CENTER]."),
    ("ca", "FILE", False, "CA certificate of the Center [env KONORCTL_CA]."),
    ("token", "TOKEN", True, "API token [env KONORCTL_TOKEN]."),
    ("context", "NAME", False, "Context of the config file [env KONORCTL_CONTEXT]."),
    (
        "timeout",
        "SECONDS",
        False,
        "Seconds to wait for the Center [env KONORCTL_TIMEOUT; default 30].",
    ),
)
"""Each connection flag: name, metavar, whether the command receives it, help."""


def connection_options(fn: F) -> F:
    """Add ``--center``, ``--ca``, ``--token``, ``--context`` and ``--timeout``.

    For commands with their own ``-o`` (``diff``, ``plan``, ``audit export``):
    the command receives ``center`` and ``token``; ``--ca``, ``--context`` and
    ``--timeout`` reach :func:`client` (and :meth:`Settings.resolve`) through
    click's context, as the same flags before the subcommand do."""
    for name, metavar, exposed, text in reversed(_CONNECTION):
        fn = click.option(
            f"--{name}",
            default=None,
            metavar=metavar,
            expose_value=exposed,
            callback=remember(AFTER),
            help=text,
        )(fn)
    return fn


def center_options(fn: F) -> F:
    """:func:`connection_options` and ``-o/--output``.

    The command receives ``center``, ``token`` and ``output``."""
    return connection_options(output_option(fn))


def client(center: str | None, token: str | None) -> CenterClient:
    return CenterClient(Settings.resolve(center=center, token=token))


def print_json(value: Any) -> None:
    """``value`` as one JSON document, or YAML under ``-o yaml``."""
    if output_format() == "yaml":
        click.echo(yaml_text(value), nl=False)
        return
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def yaml_text(value: Any) -> str:
    """``value`` (JSON-shaped) as a block-style YAML document."""
    from ruamel.yaml import YAML

    buf = io.StringIO()
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    yaml.dump(json.loads(json.dumps(value)), buf)
    return buf.getvalue()


def console() -> Console:
    """A rich console for stdout: the terminal's width, or unbounded when piped."""
    if sys.stdout.isatty():
        return Console()
    return Console(file=sys.stdout, width=PIPE_WIDTH, soft_wrap=True)


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    empty: str,
    *,
    wide_only: Collection[str] = (),
) -> None:
    """A table of ``rows``; the ``wide_only`` columns appear only with ``-o wide``."""
    rows = list(rows)
    out = console()
    if not rows:
        out.print(Text(empty))
        return
    keep = [i for i, c in enumerate(columns) if output_format() == "wide" or c not in wide_only]
    piped = out.width == PIPE_WIDTH
    table = Table(title=title, title_justify="left")
    for i in keep:
        table.add_column(columns[i], overflow="fold", no_wrap=piped)
    for row in rows:
        table.add_row(*(cell(row[i]) for i in keep))
    out.print(table)


def cell(value: Any) -> Text:
    """A table cell: ``value`` as plain text (never rich markup), None as empty."""
    return Text("" if value is None else str(value))


def short(sha: str | None) -> str:
    return "" if not sha else sha[:12]
