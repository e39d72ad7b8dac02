"""Check a command line written in a unit or a Containerfile against the real CLI.

Example::

    problems("konorkestra", ["center", "--data", "/var/lib/x", "--bogus"])
    # -> ["konorkestra center: no option --bogus"]

A console script named in packaging must exist in ``pyproject.toml``'s
``[project.scripts]``, each word must be a real subcommand, and each ``--option``
one that subcommand accepts: packaging that passes an option we dropped fails here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import click

from konorkestra.cli.daemon import cli as daemon_cli
from konorkestra.cli.konorctl import cli as konorctl_cli

ROOT = Path(__file__).resolve().parents[2]
CLIS: dict[str, click.Command] = {"konorkestra": daemon_cli, "konorctl": konorctl_cli}


def console_scripts() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["scripts"])


def problems(script: str, args: list[str]) -> list[str]:
    """What is wrong with ``script args...`` (empty: every word and option exists)."""
    if script not in console_scripts() or script not in CLIS:
        return [f"{script}: not a console script of pyproject.toml"]
    command, path = CLIS[script], [script]
    words = iter(args)
    for word in words:
        if word.startswith("-") or not isinstance(command, click.Group):
            break
        sub = command.get_command(click.Context(command), word)
        if sub is None:
            return [f"{' '.join(path)}: no subcommand {word}"]
        command, path = sub, [*path, word]
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    return [f"{' '.join(path)}: no option {arg}"
            for arg in args if arg.startswith("--") and arg not in known]  # fmt: skip
