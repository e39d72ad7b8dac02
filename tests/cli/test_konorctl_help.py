"""Every ``konorctl`` help screen fits 80 columns and shows an example; the
completion scripts load in real shells."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from konorkestra.cli.konorctl import cli

KONORCTL = str(Path(sys.executable).parent / "konorctl")


def walk(group: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Every command path under ``group``, nested groups included."""
    yield path
    if isinstance(group, click.Group):
        ctx = click.Context(group, info_name=path[-1] if path else "konorctl")
        for name in group.list_commands(ctx):
            sub = group.get_command(ctx, name)
            assert sub is not None, name
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(cli, ()))


def test_the_tree_is_walked_into_nested_groups() -> None:
    assert ("rollout", "status") in COMMANDS and ("config", "view") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "konorctl")
def test_help_fits_80_columns_and_shows_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    wide = [line for line in result.stdout.splitlines() if len(line) > 80]
    assert not wide, f"lines over 80 columns: {wide}"
    assert "Example:" in result.stdout or "Examples:" in result.stdout, result.stdout


def test_bash_completion_sources_cleanly() -> None:
    script = f"source <({KONORCTL} completion bash) && complete -p konorctl"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "-F _konorctl_completion konorctl" in proc.stdout


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_get_a_script(shell: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0 and "_KONORCTL_COMPLETE" in result.stdout
    if shutil.which(shell):
        check = ["zsh", "-n"] if shell == "zsh" else ["fish", "--no-execute"]
        proc = subprocess.run(check, input=result.stdout, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_completion_completes_subcommands() -> None:
    env = {"COMP_WORDS": "konorctl config ", "COMP_CWORD": "2",
           "_KONORCTL_COMPLETE": "bash_complete", "PATH": "/usr/bin:/bin"}  # fmt: skip
    proc = subprocess.run([KONORCTL], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,use-context" in proc.stdout.splitlines()
