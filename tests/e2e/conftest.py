"""End-to-end fixtures: real Center processes, real Git repos, the real CLI.

Helpers live in ``tests/helpers`` (``center_proc``, ``git``, ``configrepo``,
``poll``) so later issues' e2e tests reuse them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers.center_proc import CenterProcess


@pytest.fixture
def center_factory(tmp_path: Path) -> Iterator[Callable[..., CenterProcess]]:
    """``center_factory(repo, *args)`` -> a started :class:`CenterProcess`; all stopped after."""
    started: list[CenterProcess] = []

    def make(repo: Path | str, *args: str, data: Path | None = None) -> CenterProcess:
        center = CenterProcess(repo=repo, data=data or tmp_path / f"data{len(started)}", args=args)
        started.append(center)
        return center.start()

    yield make
    for center in started:
        center.stop()
