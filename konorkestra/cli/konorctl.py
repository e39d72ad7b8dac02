"""``konorctl``: the operator's command line.

Exit codes, for every subcommand: 0 success, 1 the thing checked is not right
(diagnostics, a refused bundle, an API error), 2 usage errors.
"""

from __future__ import annotations

import click

from konorkestra import __version__
from konorkestra.cli.lazy import LazyGroup

# One line per subcommand; each lives in its own module.
COMMANDS: dict[str, str] = {
    "validate": "konorkestra.cli.validate:validate",
    "commits": "konorkestra.cli.commits_cmd:commits",
    "releases": "konorkestra.cli.releases_cmd:releases",
    "release": "konorkestra.cli.releases_cmd:release",
    "rollouts": "konorkestra.cli.rollout_cmd:rollouts",
    "rollout": "konorkestra.cli.rollout_cmd:rollout",
    "audit": "konorkestra.cli.audit_cmd:audit",
    "login": "konorkestra.cli.login_cmd:login",
    "token": "konorkestra.cli.token_cmd:token",
    "nodes": "konorkestra.cli.nodes_cmd:nodes",
    "verify": "konorkestra.cli.verify:verify",
    "diff": "konorkestra.cli.diff_cmd:diff",
    "plan": "konorkestra.cli.plan_cmd:plan",
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="konorctl")
def cli() -> None:
    """Operate Konorkestra: validate config repos, verify releases, drive the Center."""


def main() -> None:
    """Console-script entry point."""
    cli()
