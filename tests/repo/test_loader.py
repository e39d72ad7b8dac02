from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from konorkestra.repo import RepoError, SourceError, load_commit, load_worktree, loader
from konorkestra.repo.loader import ignored_documents

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


# --- Near-miss definitions are errors, never silent drops (issue 12, finding 5) ---

API_HINT = "did you mean apiVersion: konorkestra.io/v1?"
BODY = "metadata: {name: web, version: 1}\nspec: {data: {}}\n"


def load_one(tmp_path: Path, text: str) -> Any:
    (tmp_path / "defs.yaml").write_text(text)
    return load_worktree(tmp_path)


@pytest.mark.parametrize(
    ("head", "line", "column"),
    [
        ("apiVersion: v1\nkind: ConfigSet\n", 1, 13),
        ("apiVersion: konorkestra.i/v1\nkind: ConfigSet\n", 1, 13),
        ("apiVersion: konorkesrta.io/v1\nkind: Policy\n", 1, 13),
        ("apiVersion: Konorkestra.IO/v1\nkind: Group\n", 1, 13),
        ("apiVersion: apps/v1\nkind: Group\n", 1, 13),
        ("apiVersion: 1\nkind: ConfigSet\n", 1, 13),
        ("# no apiVersion at all\nkind: ConfigSet\n", 2, 1),
        ("apiVersion: v1\nkind: configset\n", 1, 13),
    ],
)
def test_a_konorkestra_kind_with_another_api_version_is_an_error(
    tmp_path: Path, head: str, line: int, column: int
) -> None:
    snap = load_one(tmp_path, "---\n" + head + BODY)
    assert snap.definitions == ()
    first = snap.diagnostics[0]
    assert (first.code, first.file, first.line, first.column) == (
        "api-version",
        "defs.yaml",
        line + 1,
        column,
    )
    assert first.hint == API_HINT


@pytest.mark.parametrize(
    ("text", "code", "line", "hint"),
    [
        ("apiversion: konorkestra.io/v1\nkind: ConfigSet\n" + BODY, "api-version", 1, API_HINT),
        ("APIVersion: konorkestra.io/v1\nkind: ConfigSet\n" + BODY, "api-version", 1, API_HINT),
        ("apiVersion: konorkestra.io/v1\nKind: ConfigSet\n" + BODY, "unknown-kind", 2, None),
        ("apiVersion: v1\nKIND: ConfigSet\n" + BODY, "unknown-kind", 2, None),
        (
            "apiVersion: konorkestra.io/v1\nkind: ConfigSet\nmetaData: {name: web, version: 1}\n",
            "schema",
            3,
            "did you mean metadata?",
        ),
        (
            "apiVersion: konorkestra.io/v1\nkind: Policy\nmetadata: {name: p}\nSpec: {}\n",
            "schema",
            4,
            None,
        ),
    ],
)
def test_a_miscased_top_level_key_is_an_error_at_the_key(
    tmp_path: Path, text: str, code: str, line: int, hint: str | None
) -> None:
    snap = load_one(tmp_path, text)
    assert snap.definitions == ()
    found = [(d.code, d.line, d.column) for d in snap.diagnostics]
    assert (code, line, 1) in found
    key = text.splitlines()[line - 1].split(":")[0]
    [diag] = [d for d in snap.diagnostics if d.line == line]
    canonical = {"apiversion": "apiVersion"}.get(key.lower(), key.lower())
    assert diag.message == f"key {key!r} must be spelt {canonical!r}"
    if hint is not None:
        assert diag.hint == hint


def test_a_miscased_kind_value_hints_at_the_right_spelling(tmp_path: Path) -> None:
    snap = load_one(tmp_path, "apiVersion: konorkestra.io/v1\nkind: group\nmetadata: {name: g}\n")
    [diag] = snap.diagnostics
    assert (diag.code, diag.line, diag.hint) == ("unknown-kind", 2, "did you mean kind: Group?")


SOMEONE_ELSES = {
    "kyverno.yaml": "apiVersion: kyverno.io/v1\nkind: Policy\nmetadata: {name: labels}\n",
    "audit.yaml": "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Metadata}]\n",
    "openshift.yaml": "apiVersion: user.openshift.io/v1\nkind: Group\nusers: [ann]\n",
    "deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
    "rbac.yaml": (
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nsubjects:\n"
        "  - kind: Group\n    name: admins\n"
    ),
    "helm.yaml": "apiVersion: kyverno.io/v1\nkind: Policy\nmetadata: {{ .Values.name }}\nx: [\n",
    "list.yaml": "- kind: ConfigSet\n",
}


def test_documents_that_are_clearly_someone_elses_stay_ignored_and_are_listed(
    tmp_path: Path,
) -> None:
    for name, text in SOMEONE_ELSES.items():
        (tmp_path / name).write_text(text)
    snap = load_worktree(tmp_path)
    assert (snap.definitions, snap.diagnostics) == ((), ())
    ignored = {(i.file, i.kind, i.api_version) for i in ignored_documents(snap.source)}
    assert ("kyverno.yaml", "Policy", "kyverno.io/v1") in ignored
    assert ("audit.yaml", "Policy", "audit.k8s.io/v1") in ignored
    assert ("openshift.yaml", "Group", "user.openshift.io/v1") in ignored
    assert ("deploy.yaml", "Deployment", "apps/v1") in ignored
    assert ("rbac.yaml", "RoleBinding", "rbac.authorization.k8s.io/v1") in ignored
    assert ("list.yaml", None, None) in ignored
    [helm] = [i for i in ignored_documents(snap.source) if i.file == "helm.yaml"]
    assert helm.reason is not None and helm.reason.startswith("yaml-syntax")


def test_broken_yaml_mentioning_konorkestra_in_any_case_is_an_error(tmp_path: Path) -> None:
    snap = load_one(tmp_path, "apiVersion: KONORKESTRA.io/v1\nkind: Group\nmetadata: [\n")
    assert [(d.code, d.file) for d in snap.diagnostics] == [("yaml-syntax", "defs.yaml")]


def test_files_without_a_mention_or_one_of_our_kind_lines_are_not_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[int] = []
    real = loader.load_yaml

    def spy(data: bytes) -> Any:
        parsed.append(len(data))
        return real(data)

    monkeypatch.setattr(loader, "load_yaml", spy)
    (tmp_path / "deploy.yaml").write_text(SOMEONE_ELSES["deploy.yaml"])
    (tmp_path / "nested.yaml").write_text("spec:\n  kind: Group\n")  # not a top-level kind
    assert load_worktree(tmp_path).diagnostics == () and parsed == []
    (tmp_path / "flow.yaml").write_text("{apiVersion: v1, Kind: 'ConfigSet'}\n")
    assert [d.code for d in load_worktree(tmp_path).diagnostics] == ["unknown-kind", "api-version"]
    assert len(parsed) == 1
