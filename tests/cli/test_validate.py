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
