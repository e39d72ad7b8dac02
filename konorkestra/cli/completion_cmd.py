"""``konorctl completion bash|zsh|fish``: print the shell completion script.

Example::

    source <(konorctl completion bash)                  # this shell
    konorctl completion zsh > "${fpath[1]}/_konorctl"    # every new zsh
    konorctl completion fish > ~/.config/fish/completions/konorctl.fish

Invariant: the script is click's own (the ``_KONORCTL_COMPLETE`` protocol), so
it completes every subcommand and option the installed ``konorctl`` has, with
no list kept here to fall out of date.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    Examples:
      source <(konorctl completion bash)        # add to ~/.bashrc
      konorctl completion zsh > "${fpath[1]}/_konorctl"
      konorctl completion fish \\
          > ~/.config/fish/completions/konorctl.fish
    """
    from konorkestra.cli.konorctl import cli

    cls = get_completion_class(shell)
    if cls is None:  # click knows all of SHELLS; kept for the type checker
        raise click.UsageError(f"no completion for {shell}")
    script = cls(cli, {}, "konorctl", "_KONORCTL_COMPLETE").source()
    click.echo(script)
