"""``--watch`` for views that change: redraw every interval until Ctrl-C.

Example::

    code = watch(lambda: load(c), draw, interval=2.0, out=console())
    click.get_current_context().exit(code)          # 0 on Ctrl-C

Invariants:

* On a terminal the view is redrawn in place (``rich.live``) after every fetch.
* Not on a terminal, a block is printed only when its text differs from the
  last block printed (the first always), after a line with the time, so a log
  of a piped watch holds each change once.
* With ``as_json``, each changed value is printed as one line of compact JSON
  (JSON Lines), compared the same way.
* Ctrl-C ends the watch: exit code 0, nothing printed after it. A failure to
  ask the Center (:class:`~konorkestra.cli.client.CenterError`) ends it too,
  with its own message and exit code 1.
* ``sleep`` and ``clock`` are parameters so the loop can be driven without
  waiting; the command passes :func:`time.sleep` and the wall clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console, RenderableType

T = TypeVar("T")

INTERVAL = click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="How often --watch asks the Center.",
)
"""The ``--interval`` option of every command with ``--watch``."""


def _text(out: Console, view: RenderableType) -> str:
    with out.capture() as captured:
        out.print(view)
    return captured.get()


def watch(
    fetch: Callable[[], T],
    draw: Callable[[T], RenderableType],
    *,
    interval: float,
    out: Console,
    as_json: Callable[[T], Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], str] = lambda: time.strftime("%H:%M:%S"),
) -> int:
    """Show ``draw(fetch())`` every ``interval`` seconds until Ctrl-C; the exit code (0)."""
    try:
        if as_json is None and out.is_terminal:
            from rich.live import Live

            with Live(draw(fetch()), console=out, auto_refresh=False) as live:
                while True:
                    sleep(interval)
                    live.update(draw(fetch()), refresh=True)
        last: str | None = None
        while True:
            value = fetch()
            if as_json is not None:
                text = json.dumps(as_json(value), sort_keys=True, separators=(",", ":"))
                if text != last:
                    click.echo(text)
            else:
                text = _text(out, draw(value))
                if text != last:
                    click.echo(f"-- {clock()}")
                    click.echo(text, nl=False)
            last = text
            sleep(interval)
    except KeyboardInterrupt:
        return 0


def show_or_watch(
    fetch: Callable[[], T],
    draw: Callable[[T], RenderableType],
    *,
    as_json: Callable[[T], Any] | None,
    watching: bool,
    interval: float,
) -> None:
    """Print ``draw(fetch())`` once (``as_json`` of it through ``-o``), or :func:`watch`
    it and exit with its code."""
    from konorkestra.cli.output import console, print_json

    if watching:
        code = watch(fetch, draw, interval=interval, out=console(), as_json=as_json)
        click.get_current_context().exit(code)
    value = fetch()
    if as_json is not None:
        print_json(as_json(value))
    else:
        console().print(draw(value))
