from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from konorkestra.repo import RepoError, SourceError, load_commit, load_worktree

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "config-repo"


def names(snapshot: Any) -> list[tuple[str, str, str, int]]:
    return [(d.kind, d.name, d.file, d.line) for d in snapshot.definitions]


def test_worktree_loads_every_definition_with_its_location() -> None:
    snap = load_worktree(EXAMPLE)
    assert snap.diagnostics == () and snap.commit is None
    found = names(snap)
    assert ("ConfigSet", "checkout-api", "configsets/checkout-api.yaml", 3) in found
    assert ("ConfigSet", "checkout-api", "configsets/checkout-api.yaml", 23) in found
    assert {k for k, *_ in found} == {"ConfigSet", "Policy", "Group"}
    assert all(not f.startswith(".") and f != "owners.yaml" for _, _, f, _ in found)
    assert snap.read_file("files/nginx/payments.conf").startswith(b"# Shipped verbatim")


def test_commit_loads_the_same_definitions_as_the_worktree(repo: Any) -> None:
    repo.copy_tree(EXAMPLE)
    sha = repo.commit("example")
    snap = load_commit(repo.path, "HEAD")
    assert snap.commit == sha and snap.subject == "example"
    assert names(snap) == names(load_worktree(EXAMPLE))
    assert (
        snap.read_file("files/nginx/payments.conf")
        == (EXAMPLE / "files/nginx/payments.conf").read_bytes()
    )
    assert load_commit(repo.path, sha[:8]).commit == sha
    assert load_commit(repo.path, "main").commit == sha


def test_commit_state_not_worktree_state_is_read(repo: Any, configset: Callable[..., str]) -> None:
    repo.write("a.yaml", configset("a", 1))
    repo.commit("one")
    repo.write("b.yaml", configset("b", 1))  # not committed
    assert [d.name for d in load_commit(repo.path).definitions] == ["a"]
    assert sorted(d.name for d in load_worktree(repo.path).definitions) == ["a", "b"]


def test_other_yaml_and_hidden_dirs_are_skipped(tmp_path: Path, configset: Any) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "cs.yaml").write_text(configset("hidden", 1))
    (tmp_path / "k8s.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\n")
    (tmp_path / "broken-but-not-ours.yml").write_text("a: [\n")
    (tmp_path / "mixed.yml").write_text("kind: Other\n---\n" + configset("shown", 1))
    (tmp_path / "notes.txt").write_text(configset("text", 1))
    snap = load_worktree(tmp_path)
    assert [(d.name, d.file, d.line) for d in snap.definitions] == [("shown", "mixed.yml", 3)]
    assert snap.diagnostics == ()


def test_bad_kind_and_api_version_are_load_diagnostics(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(
        "apiVersion: konorkestra.io/v1\nkind: Secret\nmetadata: {name: s}\n---\n"
        "apiVersion: konorkestra.io/v9\nkind: Policy\nmetadata: {name: p}\n"
    )
    snap = load_worktree(tmp_path)
    assert snap.definitions == ()
    assert [(d.code, d.file, d.line) for d in snap.diagnostics] == [
        ("unknown-kind", "x.yaml", 2),
        ("api-version", "x.yaml", 5),
    ]


def test_worktree_refuses_symlinks_out_of_the_repo(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("s3cr3t")
    root = tmp_path / "repo"
    root.mkdir()
    os.symlink(outside, root / "link.conf")
    with pytest.raises(SourceError) as info:
        load_worktree(root).read_file("link.conf")
    assert info.value.code == "file-path"


def test_usage_errors_raise_repo_error(tmp_path: Path, repo: Any, configset: Any) -> None:
    with pytest.raises(RepoError, match="no such directory"):
        load_worktree(tmp_path / "absent")
    with pytest.raises(RepoError, match="not a Git repository"):
        load_commit(tmp_path)
    repo.write("a.yaml", configset("a", 1))
    repo.commit("one")
    with pytest.raises(RepoError, match="unknown revision"):
        load_commit(repo.path, "no-such-branch")
