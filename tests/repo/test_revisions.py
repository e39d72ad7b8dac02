"""Ancestry suffixes agree with ``git rev-parse`` on a real repository with a merge."""

from __future__ import annotations

import pytest

from konorkestra.repo.sources import RepoError, open_repo, resolve_commit
from tests.repo.conftest import GitRepo


@pytest.fixture
def merged(repo: GitRepo) -> GitRepo:
    """``a`` -> ``b`` on main, ``c`` on side from ``a``, merged into main (``m``)."""
    repo.write("a.txt", "a")
    repo.commit("a")
    repo.git("tag", "v1")
    repo.git("branch", "side")
    repo.write("b.txt", "b")
    repo.commit("b")
    repo.git("checkout", "-q", "side")
    repo.write("c.txt", "c")
    repo.commit("c")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-edit", "side")
    return repo


@pytest.mark.parametrize(
    "rev",
    ["HEAD", "HEAD~", "HEAD~1", "HEAD^", "HEAD^1", "HEAD^2", "HEAD^2~1", "HEAD~2", "main~1^",
     "HEAD^0", "side~1", "v1", "HEAD~~", "HEAD^^"],
)  # fmt: skip
def test_suffixes_resolve_like_git(merged: GitRepo, rev: str) -> None:
    expected = merged.git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").stdout.strip()
    with open_repo(merged.path) as repo:
        assert resolve_commit(repo, rev).id.decode() == expected


def test_short_sha_with_a_suffix(merged: GitRepo) -> None:
    short = merged.git("rev-parse", "--short", "HEAD").stdout.strip()
    expected = merged.git("rev-parse", "HEAD~1").stdout.strip()
    with open_repo(merged.path) as repo:
        assert resolve_commit(repo, f"{short}~1").id.decode() == expected


@pytest.mark.parametrize("rev", ["HEAD~3", "HEAD^3", "HEAD~1^2", "nope~1", "HEAD@{1}", "~1"])
def test_beyond_the_history_is_an_unknown_revision(merged: GitRepo, rev: str) -> None:
    with open_repo(merged.path) as repo, pytest.raises(RepoError, match="unknown revision"):
        resolve_commit(repo, rev)
