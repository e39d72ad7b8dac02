"""``konorctl``: the operator's command line.

Exit codes, for every subcommand: 0 success, 1 the thing checked is not right
(diagnostics, a refused bundle, an API error), 2 usage errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from konorkestra import __version__
from konorkestra.cli.contexts import BEFORE, remember
from konorkestra.cli.lazy import LazyGroup

F = TypeVar("F", bound=Callable[..., Any])

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
    "api-token": "konorkestra.cli.api_token_cmd:api_token",
    "groups": "konorkestra.cli.groups_cmd:groups",
    "nodes": "konorkestra.cli.nodes_cmd:nodes",
    "verify": "konorkestra.cli.verify:verify",
    "diff": "konorkestra.cli.diff_cmd:diff",
    "plan": "konorkestra.cli.plan_cmd:plan",
    "config": "konorkestra.cli.config_cmd:config",
    "completion": "konorkestra.cli.completion_cmd:completion",
}


_EPILOG = """\b
Examples:
  konorctl login --name prod --center https://center:7400 \\
      --ca ca.pem --token kt_0123456789ab.SECRET
  konorctl releases                     # the current context's Center
  konorctl --context lab -o yaml nodes  # global flags before ...
  konorctl nodes --context lab -o wide  # ... or after the subcommand
  source <(konorctl completion bash)

\b
Global flags (before or after the subcommand; after wins):
  --center URL, --ca FILE, --token TOKEN, --context NAME,
  --timeout SECONDS (default 30), -o table|wide|json|yaml
Env: KONORCTL_CENTER, KONORCTL_CA, KONORCTL_TOKEN, KONORCTL_CONTEXT,
KONORCTL_TIMEOUT;
then the context in ~/.config/konorkestra/konorctl.yaml
(konorctl config --help). Exit codes: 0 ok, 1 not ok, 2 usage.
"""


def _global(name: str, *decls: str, **kwargs: Any) -> Callable[[F], F]:
    """A flag given before the subcommand: kept in ``ctx.meta[BEFORE]``, where
    :meth:`konorkestra.cli.client.Settings.resolve` and ``-o`` look for it."""
    return click.option(
        *decls, name, default=None, expose_value=False, callback=remember(BEFORE), **kwargs
    )


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80},
    epilog=_EPILOG,
)
@_global("center", "--center", metavar="URL", help="Center URL [env KONORCTL_CENTER].")
@_global("ca", "--ca", metavar="FILE", help="CA certificate of the Center [env KONORCTL_CA].")
@_global("token", "--token", help="API token [env KONORCTL_TOKEN].")
@_global("context", "--context", metavar="NAME", help="Config-file context [env KONORCTL_CONTEXT].")
@_global(
    "timeout",
    "--timeout",
    metavar="SECONDS",
    help="Seconds to wait for the Center (> 0) [env KONORCTL_TIMEOUT; default 30].",
)
@_global(
    "output",
    "-o",
    "--output",
    type=click.Choice(["table", "wide", "json", "yaml"]),
    help="Output format of data commands.",
)
@click.version_option(__version__, prog_name="konorctl")
def cli() -> None:
    """Operate Konorkestra: validate config repos, verify releases, drive the Center."""


def main() -> None:
    """Console-script entry point.

    When stdout is not a terminal, every rich console of the process (rollout
    views included) gets an unbounded width through ``COLUMNS``, so piped
    tables never wrap or cut (see :mod:`konorkestra.cli.output`)."""
    import os
    import sys

    if not sys.stdout.isatty():
        os.environ["COLUMNS"] = "1000000"
    cli()
