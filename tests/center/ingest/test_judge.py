"""Ingest's verdict is the repo validator's, on every example and on history."""

from __future__ import annotations

from pathlib import Path

import pytest

from konorkestra.center.ingest.process import judge
from konorkestra.model.types import Digest
from konorkestra.repo import AnalysisCache, History, Published, load_worktree, validate
from tests.helpers.git import EXAMPLES

INVALID = sorted(p for p in (EXAMPLES / "invalid").iterdir() if p.is_dir())


@pytest.mark.parametrize("example", INVALID, ids=[p.name for p in INVALID])
def test_invalid_examples_are_rejected_with_the_validators_diagnostics(example: Path) -> None:
    snapshot = load_worktree(example)
    diagnostics, resolved = judge(snapshot, History())
    assert resolved is None
    assert diagnostics == validate(snapshot, history=History())


def test_the_example_repo_is_accepted_and_resolved() -> None:
    snapshot = load_worktree(EXAMPLES / "config-repo")
    diagnostics, resolved = judge(snapshot, History())
    assert diagnostics == [] == validate(snapshot, history=History())
    assert resolved is not None and set(resolved.groups) == {"checkout", "payments"}


def test_a_changed_published_version_gets_the_validators_immutability_diagnostic() -> None:
    snapshot = load_worktree(EXAMPLES / "config-repo")
    history = History(
        {"payments-common@1": Published(Digest("sha256:" + "0" * 64), "a" * 40, "old")}
    )
    diagnostics, resolved = judge(snapshot, history)
    assert resolved is None
    assert diagnostics == validate(snapshot, history=history)
    assert [d.code for d in diagnostics] == ["immutable-version"]


def test_an_unchanged_published_version_is_fine() -> None:
    snapshot = load_worktree(EXAMPLES / "config-repo")
    _, resolved = judge(snapshot, History())
    assert resolved is not None
    cs = resolved.configsets["payments-common@1"]
    history = History({"payments-common@1": Published(cs.digest, "a" * 40, "old")})
    assert judge(snapshot, history)[0] == []


def test_a_warm_cache_gives_the_same_verdicts() -> None:
    cache = AnalysisCache()
    repo = EXAMPLES / "config-repo"
    for _ in range(2):
        for example in [repo, *INVALID]:
            snapshot = load_worktree(example, cache=cache)
            cold = load_worktree(example)
            diagnostics, resolved = judge(snapshot, History(), cache=cache)
            assert diagnostics == validate(cold, history=History())
            assert (resolved is None) == (example != repo)
    _, resolved = judge(load_worktree(repo, cache=cache), History(), cache=cache)
    assert resolved is not None
    cs = resolved.configsets["payments-common@1"]
    changed = History({"payments-common@1": Published(Digest("sha256:" + "0" * 64), "a" * 40, "x")})
    assert judge(load_worktree(repo, cache=cache), changed, cache=cache)[0] == validate(
        load_worktree(repo), history=changed
    )
    assert (
        judge(load_worktree(repo), History({cs.key: Published(cs.digest, "a" * 40, "x")}))[0] == []
    )
