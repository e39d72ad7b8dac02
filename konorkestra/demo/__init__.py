"""Run a whole Konorkestra installation on one machine: the demo, e2e tests and benchmarks.

Example::

    from konorkestra.demo import ConfigRepo, Stack

    with Stack(tmp) as stack:
        repo = ConfigRepo.create(tmp, seed=examples_dir() / "config-repo"); repo.push()
        center = stack.center(repo.bare)
        agent = stack.agent("node-1"); agent.join(center, center.create_token(["checkout"]))
        app = stack.app(agent.start(), "checkout")

Modules: :mod:`~konorkestra.demo.procs` (processes, deadline waits),
:mod:`~konorkestra.demo.gitrepo` (a bare repo and a work clone via the git CLI),
:mod:`~konorkestra.demo.stack` (Center, Agent, app processes),
:mod:`~konorkestra.demo.edits` (the config changes pushed),
:mod:`~konorkestra.demo.fleet` (several nodes, each an Agent and an app),
:mod:`~konorkestra.demo.whosaw` (the Center's record of which process saw which Release),
and what ``konorkestra demo`` shows: :mod:`~konorkestra.demo.story` (the whole run),
:mod:`~konorkestra.demo.rollout_story` (canary, approval, waves, rollback) on
:mod:`~konorkestra.demo.scene`, with :mod:`~konorkestra.demo.steps` (✓/✗ steps) and
:mod:`~konorkestra.demo.rollout_view` (one-line summaries of a rollout).
"""

from __future__ import annotations

from konorkestra.demo.gitrepo import ConfigRepo
from konorkestra.demo.procs import DemoError, Proc, ProcessDied, WaitTimeout, wait_until
from konorkestra.demo.stack import AgentHandle, AppHandle, CenterHandle, Grant, Stack, examples_dir

__all__ = [
    "AgentHandle",
    "AppHandle",
    "CenterHandle",
    "ConfigRepo",
    "DemoError",
    "Grant",
    "Proc",
    "ProcessDied",
    "Stack",
    "WaitTimeout",
    "examples_dir",
    "wait_until",
]
