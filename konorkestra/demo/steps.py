"""Numbered demo steps that print ``✓`` or ``✗``, and the small text helpers they share.

Example::

    steps = Steps(console, total=3)
    with steps.step("Start the Center", logs=[center.proc]) as out:
        out.append("serving https://127.0.0.1:8443")      # printed under the ✓ line
    # ✓ 1/3 Start the Center (0.4 s)
    #     serving https://127.0.0.1:8443

Invariants:

* A step either prints ``✓`` with its details, or ``✗`` with its details so
  far, why it failed, and the tail of the logs of the processes it names (the
  process that died first); then :class:`StepFailed` is raised, once.
* Only :class:`~konorkestra.demo.procs.DemoError` and ``OSError`` count as a
  step failing; anything else is a bug and propagates as is.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape

from konorkestra.demo.procs import DemoError, Proc, ProcessDied


class StepFailed(Exception):
    """Raised by :class:`Steps` after it printed the failure."""


class Steps:
    """Numbered steps with ✓/✗, a spinner on a terminal, and log tails on failure."""

    def __init__(self, console: Console, total: int) -> None:
        self.console, self.total, self.n = console, total, 0
        self.failed: str | None = None

    @contextlib.contextmanager
    def step(self, title: str, *, logs: Sequence[Proc] = ()) -> Iterator[list[str]]:
        self.n += 1
        label = f"[bold]{self.n}/{self.total}[/] {escape(title)}"
        details: list[str] = []
        started = time.monotonic()
        status = self.console.status(label) if self.console.is_terminal else None
        try:
            if status is not None:
                status.start()
            try:
                yield details
            finally:
                if status is not None:
                    status.stop()
        except (DemoError, OSError) as exc:
            self.failed = f"step {self.n} ({title})"
            self.console.print(f"[red]✗[/] {label}")
            for line in details:
                self.console.print(f"    {line}", highlight=False, soft_wrap=True)
            self.console.print(f"    [red]{escape(str(exc))}[/]", highlight=False, soft_wrap=True)
            dead = [exc.proc] if isinstance(exc, ProcessDied) else []
            for proc in [*dead, *(p for p in logs if p not in dead)]:
                tail = proc.tail(20)
                if tail:
                    self.console.print(f"    [bold]last lines of {proc.name}[/] ({proc.log}):")
                    self.console.print(
                        "      " + escape(tail).replace("\n", "\n      "),
                        style="dim", highlight=False, soft_wrap=True,
                    )  # fmt: skip
            raise StepFailed(str(exc)) from None
        took = time.monotonic() - started
        self.console.print(f"[green]✓[/] {label} [dim]({took:.1f} s)[/]", soft_wrap=True)
        for line in details:
            self.console.print(f"    {line}", highlight=False, soft_wrap=True)


def app_event(line: str) -> dict[str, Any]:
    """``applied release=R sequence=N config={...}`` -> its fields (config decoded)."""
    fields: dict[str, Any] = {"event": line.split(" ", 1)[0]}
    head, sep, cfg = line.partition(" config=")
    for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', head):
        fields[key] = value.strip('"')
    if sep:
        with contextlib.suppress(ValueError):
            fields["config"] = json.loads(cfg)
    return fields


def timeout_ms(event: dict[str, Any]) -> object:
    """``checkout-api.timeout_ms`` of an app event's config (``?`` when absent)."""
    return event.get("config", {}).get("checkout-api", {}).get("timeout_ms", "?")


def excerpt(text: str, lines: int = 12) -> str:
    """``text`` without blank lines, cut to ``lines`` lines."""
    out = [ln.rstrip() for ln in text.rstrip().splitlines() if ln.strip()]
    if len(out) > lines:
        out = [*out[:lines], f"… ({len(out) - lines} more lines)"]
    return "\n".join(out)


def indent(text: str) -> str:
    """``text`` escaped for rich markup, continuation lines indented under a step's details."""
    return escape(text).replace("\n", "\n    ")


def short(release: object) -> str:
    """``checkout-2-5f0c…`` -> ``checkout-2`` (what a person reads in a table)."""
    found = re.fullmatch(r"(.+-[0-9]+)-[0-9a-z]+", str(release))
    return found.group(1) if found else str(release)
