from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from konorkestra.cli.konorctl import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "config-repo"
INVALID = ROOT / "examples" / "invalid"


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["validate", *map(str, args)])
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def git_repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(tmp_path),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="A",
        GIT_AUTHOR_EMAIL="a@example.invalid",
        GIT_COMMITTER_NAME="C",
        GIT_COMMITTER_EMAIL="c@example.invalid",
    )
    path = tmp_path / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, env=env, check=True)
    return path, env


def commit(repo: tuple[Path, dict[str, str]], message: str) -> str:
    path, env = repo
    subprocess.run(["git", "add", "-A"], cwd=path, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", message], cwd=path, env=env, check=True)
    out = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def configset(version: int, port: int) -> str:
    return (
        f"apiVersion: konorkestra.io/v1\nkind: ConfigSet\n"
        f"metadata: {{name: web, version: {version}}}\nspec:\n  data: {{port: {port}}}\n"
    )


def test_clean_repo_exits_zero_with_a_summary() -> None:
    code, out, _ = run(EXAMPLE)
    assert code == 0
    assert "valid: 8 definitions (4 ConfigSets, 2 Groups, 2 Policies)" in out


def test_errors_print_like_a_compiler_grouped_by_file() -> None:
    code, out, _ = run(INVALID / "missing-configset")
    assert code == 1
    path = os.path.normpath(INVALID / "missing-configset" / "group.yaml")
    lines = out.splitlines()
    assert lines[0] == path
    assert lines[1].startswith(f"{path}:16:7: error: Group web: ConfigSet 'web' has no version 2")
    assert "[missing-configset] (hint: " in lines[1]
    assert lines[2].startswith(f"{path}:17:7: error:")
    assert lines[-1].endswith("2 errors in 1 file")


def test_json_output_is_a_stable_document() -> None:
    code, out, _ = run(INVALID / "policy-duration", "-o", "json")
    assert code == 1
    doc = json.loads(out)
    assert set(doc) == {"format", "target", "commit", "against", "valid", "summary", "diagnostics"}
    assert doc["format"] == 1 and doc["valid"] is False
    assert doc["summary"] == {"definitions": 1, "errors": 1, "warnings": 0}
    [diag] = doc["diagnostics"]
    assert diag == {
        "code": "policy-duration",
        "message": diag["message"],
        "severity": "error",
        "file": "policy.yaml",
        "line": 9,
        "column": 13,
        "kind": "Policy",
        "name": "slow",
        "path": "/spec/steps/0/bake",
        "hint": "write durations like 90s, 5m or 1h30m",
        "display_path": os.path.normpath(INVALID / "policy-duration" / "policy.yaml"),
    }
    assert json.loads(run(EXAMPLE, "-o", "json")[1])["valid"] is True


@pytest.mark.parametrize("case", sorted(p.name for p in INVALID.iterdir() if p.is_dir()))
def test_every_invalid_example_exits_one_naming_its_code(case: str) -> None:
    code, out, _ = run(INVALID / case)
    assert code == 1 and f"[{case}]" in out


def test_rev_checks_immutability_and_names_the_earlier_commit(
    git_repo: tuple[Path, dict[str, str]],
) -> None:
    path = git_repo[0]
    (path / "web.yaml").write_text(configset(1, 8080))
    first = commit(git_repo, "publish web@1")
    (path / "web.yaml").write_text(configset(1, 9090))
    second = commit(git_repo, "edit web@1 in place")
    code, out, _ = run(path, "--rev", "HEAD")
    assert code == 1
    assert "web.yaml:3:" in out and "[immutable-version]" in out
    assert first[:7] in out and "publish web@1" in out
    assert second[:12] in out.splitlines()[-1]
    # The first commit on its own is fine; so is the work tree without --against.
    assert run(path, "--rev", first)[0] == 0
    assert run(path)[0] == 0
    # --against compares the work tree with that rev's history.
    assert run(path, "--against", first)[0] == 1
    # JSON names the commit.
    assert json.loads(run(path, "--rev", "main", "-o", "json")[1])["commit"] == second


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/dir"], "no such file or directory"),
        (["{tmp}", "--rev", "HEAD"], "not a Git repository"),
        (["{repo}", "--rev", "nope"], "unknown revision"),
        (["{tmp}", "--against", "HEAD"], "not a Git repository"),
    ],
)
def test_usage_errors_exit_two_with_one_line(
    git_repo: tuple[Path, dict[str, str]], tmp_path: Path, args: list[str], message: str
) -> None:
    empty = tmp_path / "plain"
    empty.mkdir()
    (git_repo[0] / "web.yaml").write_text(configset(1, 1))
    commit(git_repo, "one")
    args = [a.format(tmp=empty, repo=git_repo[0]) for a in args]
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_konorctl_console_script_runs_validate() -> None:
    konorctl = Path(sys.executable).parent / "konorctl"
    result = subprocess.run(
        [str(konorctl), "validate", str(INVALID / "yaml-limit")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "billion-laughs.yaml:11:8: error:" in result.stdout


POLICY = (
    "apiVersion: konorkestra.io/v1\nkind: Policy\n"
    "metadata: {name: fast}\nspec: {strategy: all-at-once}\n"
)


def group(name: str) -> str:
    return (
        "apiVersion: konorkestra.io/v1\nkind: Group\n"
        f"metadata: {{name: {name}}}\nspec: {{configSets: [web], policy: fast}}\n"
    )


@pytest.fixture
def two_groups(git_repo: tuple[Path, dict[str, str]]) -> str:
    """A commit defining Groups ``web`` and ``db``; returns its sha."""
    path = git_repo[0]
    (path / "web.yaml").write_text(configset(1, 8080))
    (path / "policy.yaml").write_text(POLICY)
    (path / "web-group.yaml").write_text(group("web"))
    (path / "db-group.yaml").write_text(group("db"))
    return commit(git_repo, "two groups")


def test_a_commit_deleting_a_group_is_refused_unless_its_trailer_or_a_flag_allows_it(
    git_repo: tuple[Path, dict[str, str]], two_groups: str
) -> None:
    path = git_repo[0]
    (path / "web-group.yaml").unlink()
    dropped = commit(git_repo, "drop web")
    code, out, _ = run(path, "--rev", dropped, "--against", two_groups)
    assert code == 1 and "[group-deleted]" in out and "Group web" in out
    # As format.md writes it: the parent named with a suffix, as git does.
    assert run(path, "--rev", "HEAD", "--against", "HEAD~1") == (code, out, _)
    assert "Konorkestra-Allow-Delete: web" in out
    # Without --against nothing is compared, as before.
    assert run(path, "--rev", dropped)[0] == 0
    # By hand: the flag; it is a warning then, saying what happens to the nodes.
    code, out, _ = run(path, "--rev", dropped, "--against", two_groups, "--allow-delete", "web")
    assert code == 0 and "warning:" in out and "last Release" in out
    assert run(path, "--rev", dropped, "--against", two_groups, "--allow-delete", "db")[0] == 1
    # The commit's own trailer counts.
    (path / "web.yaml").write_text(configset(1, 8080) + "# touched\n")
    allowed = commit(git_repo, "drop web\n\nKonorkestra-Allow-Delete: web")
    assert run(path, "--rev", allowed, "--against", two_groups)[0] == 0
    report = json.loads(run(path, "--rev", allowed, "--against", two_groups, "-o", "json")[1])
    assert [(d["code"], d["severity"], d["name"]) for d in report["diagnostics"]] == [
        ("group-deleted", "warning", "web")
    ]


def test_removing_every_group_needs_star(
    git_repo: tuple[Path, dict[str, str]], two_groups: str
) -> None:
    path = git_repo[0]
    for name in ("web.yaml", "policy.yaml", "web-group.yaml", "db-group.yaml"):
        (path / name).unlink()
    code, out, _ = run(path, "--against", two_groups)
    assert code == 1 and "[every-group-deleted]" in out
    assert "Konorkestra-Allow-Delete: *" in out
    assert run(path, "--against", two_groups, "--allow-delete", "web,db")[0] == 1
    assert run(path, "--against", two_groups, "--allow-delete", "*")[0] == 0
    emptied = commit(git_repo, "empty\n\nKonorkestra-Allow-Delete: *")
    assert run(path, "--rev", emptied, "--against", two_groups)[0] == 0


def test_a_work_tree_deletion_is_a_warning_since_no_message_exists_yet(
    git_repo: tuple[Path, dict[str, str]], two_groups: str
) -> None:
    path = git_repo[0]
    (path / "db-group.yaml").unlink()
    code, out, _ = run(path, "--against", "HEAD")
    assert code == 0 and "warning:" in out and "[group-deleted]" in out
    assert "1 warning" in out.splitlines()[-1]


def test_allow_delete_needs_against(git_repo: tuple[Path, dict[str, str]], two_groups: str) -> None:
    code, out, err = run(git_repo[0], "--allow-delete", "web")
    assert code == 2 and out == "" and "--allow-delete needs --against" in err


def test_help_documents_the_trailer() -> None:
    result = CliRunner().invoke(cli, ["validate", "--help"])
    text = "".join(result.stdout.split())  # however click wraps it
    assert "Konorkestra-Allow-Delete:web,db" in text and "--allow-deleteGROUP" in text
