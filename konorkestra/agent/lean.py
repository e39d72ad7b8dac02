"""Keep the agent process small: defer what only a command line tool would load.

Example::

    from konorkestra.agent.lean import defer_httpx_cli
    defer_httpx_cli()          # before the first ``import httpx``
    import httpx               # no click/rich/pygments pulled in by httpx's own CLI

Why: ``import httpx`` imports ``httpx._main`` (its ``httpx`` command) whenever
click, rich and pygments are installed, as they are here; rich and pygments
then cost an idle agent about 3 MiB of RSS it never uses
(``bench/agent_rss.py --imports``).

Invariants:

* ``httpx.main`` still works: the stand-in put in ``sys.modules`` imports the
  real ``httpx._main`` on its first call and hands over to it.
* It does nothing once httpx is imported (whoever imported it first paid).
"""

from __future__ import annotations

import sys
import types
from typing import Any

_CLI = "httpx._main"


def defer_httpx_cli() -> None:
    """Make ``import httpx`` skip its command-line module until ``httpx.main()`` runs."""
    if "httpx" in sys.modules or _CLI in sys.modules:
        return
    stand_in = types.ModuleType(_CLI, "httpx's command line, imported on first use")

    def main(*args: Any, **kwargs: Any) -> Any:
        if sys.modules.get(_CLI) is stand_in:
            del sys.modules[_CLI]
        from httpx._main import main as real  # the real module, now

        return real(*args, **kwargs)

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules[_CLI] = stand_in
