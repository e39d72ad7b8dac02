"""The review integrations in examples/review: a GitHub Actions workflow and a GitLab CI job.

Both run ``konorctl plan -o markdown`` on a pull/merge request and post the
result as one comment. These tests read the YAML as CI would (ruamel, safe),
check what each file must say (triggers, permissions, full history, no
plaintext token), check that every ``konorctl plan`` flag they use is one the
real command accepts, and run their shell steps — the plan and the comment
text, not the posting — against a real config repo. ``yamllint`` and
``actionlint`` are not used: they are not installed here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from konorkestra.cli.konorctl import cli
from konorkestra.demo import ConfigRepo
from tests.cli.planrepo import open_pr, seeded

REVIEW = Path(__file__).resolve().parents[2] / "examples" / "review"
GITHUB = REVIEW / "github-actions.yml"
GITLAB = REVIEW / "gitlab-ci.yml"
MARKER = "<!-- konorkestra-plan -->"
TOKEN_LITERALS = re.compile(r"\bkt_[0-9a-f]{12}\.|glpat-|\bghp_|github_pat_|gh[osu]_[A-Za-z0-9]")


def load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def github_steps() -> list[dict[str, Any]]:
    (job,) = load(GITHUB)["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def github_step(name: str) -> dict[str, Any]:
    return next(s for s in github_steps() if s.get("name") == name)


def gitlab_job() -> dict[str, Any]:
    job: dict[str, Any] = load(GITLAB)["konorkestra-plan"]
    return job


def plan_commands(script: str) -> list[str]:
    """Each line of a shell script that runs ``konorctl plan``."""
    return [
        line.strip() for line in script.splitlines() if line.strip().startswith("konorctl plan ")
    ]


def all_plan_commands() -> list[str]:
    github = [c for s in github_steps() for c in plan_commands(s.get("run", ""))]
    gitlab = [c for item in gitlab_job()["script"] for c in plan_commands(item)]
    assert len(github) == 1 and len(gitlab) == 1, (github, gitlab)
    return github + gitlab


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (str(k), *strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return [str(node)]


def test_github_runs_on_pull_requests_with_minimal_permissions() -> None:
    doc = load(GITHUB)
    assert "pull_request" in doc["on"] and "pull_request_target" not in doc["on"]
    assert doc["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_github_checks_out_full_history_and_plans_markdown_against_the_base() -> None:
    steps = github_steps()
    checkout = next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    (command,) = [c for s in steps for c in plan_commands(s.get("run", ""))]
    assert "-o markdown" in command and '--against "origin/$BASE_REF"' in command
    assert github_step("Plan")["env"]["BASE_REF"] == "${{ github.base_ref }}"


def test_github_uses_only_checkout_and_setup_python() -> None:
    used = {str(s["uses"]).split("@")[0] for s in github_steps() if "uses" in s}
    assert used == {"actions/checkout", "actions/setup-python"}


def test_github_fails_the_job_on_exit_1_and_2_after_posting() -> None:
    names = [s.get("name") for s in github_steps()]
    assert (
        names.index("Plan")
        < names.index("Post the plan")
        < names.index("Fail unless the plan is valid")
    )
    assert github_step("Fail unless the plan is valid")["if"] == (
        "${{ steps.plan.outputs.code != '0' }}"
    )


def test_gitlab_runs_on_merge_requests_and_plans_markdown_against_the_target() -> None:
    job = gitlab_job()
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert job["variables"]["GIT_DEPTH"] == "0"
    (command,) = [c for item in job["script"] for c in plan_commands(item)]
    assert "-o markdown" in command
    assert '--against "origin/${CI_MERGE_REQUEST_TARGET_BRANCH_NAME}"' in command
    assert job["script"][-1] == 'exit "$code"'


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_no_plaintext_token(path: Path) -> None:
    doc = load(path)
    assert not [s for s in strings(doc) if TOKEN_LITERALS.search(s)]
    assert not [c for c in all_plan_commands() if "--token" in c]  # env, never argv
    if path == GITHUB:
        env = {k: v for step in github_steps() for k, v in (step.get("env") or {}).items()}
        secret = re.compile(r"\$\{\{ (secrets\.[A-Z_]+|github\.token) \}\}")
        for name in ("KONORCTL_CENTER", "KONORCTL_TOKEN", "CENTER_CA_PEM", "GH_TOKEN"):
            assert secret.fullmatch(env[name]), (name, env[name])
    else:  # set in the project's CI/CD variables, never in the file
        defined = set(doc["konorkestra-plan"]["variables"])
        assert not defined & {"KONORCTL_CENTER", "KONORCTL_TOKEN", "KONORCTL_CA",
                              "KONORKESTRA_GITLAB_TOKEN"}  # fmt: skip


def test_the_flags_used_are_ones_konorctl_plan_accepts() -> None:
    result = CliRunner().invoke(cli, ["plan", "--help"])
    assert result.exit_code == 0, result.output
    accepted = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", result.output))
    for command in all_plan_commands():
        used = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", command))
        assert used >= {"--rev", "--against", "--center", "-o"}
        assert used <= accepted, used - accepted


# Running the steps: the Plan step, then the comment text, as the runner would.


def bash(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    full = {"PATH": path, "HOME": str(cwd), "KONORCTL_CONFIG": os.devnull, **env}
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script], cwd=cwd, env=full,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def pr(tmp_path: Path) -> ConfigRepo:
    repo = seeded(tmp_path)
    open_pr(repo)  # branch "pr" checked out, origin/main its base
    return repo


def make_invalid(repo: ConfigRepo) -> None:
    repo.write("groups/payments.yaml", "kind: Group\n")
    repo.commit("broken Group")


def github_plan(repo: ConfigRepo) -> tuple[str, str]:
    """Run the Plan step; return (the code it recorded, plan.md)."""
    output = repo.work / "github-output"
    proc = bash(github_step("Plan")["run"], repo.work, BASE_REF="main", KONORCTL_CENTER="",
                KONORCTL_TOKEN="", CENTER_CA_PEM="", RUNNER_TEMP=str(repo.work),
                GITHUB_OUTPUT=str(output))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return output.read_text(), (repo.work / "plan.md").read_text()


def github_comment(repo: ConfigRepo, code: str) -> str:
    """Run the comment-writing part of the Post step (not the gh calls)."""
    run = github_step("Post the plan")["run"]
    script = run[: run.index("id=$(gh api")]
    proc = bash(script, repo.work, CODE=code, RUN_URL="https://ci.example/run/1")
    assert proc.returncode == 0, proc.stderr
    body: str = json.loads((repo.work / "comment.json").read_text())["body"]
    return body


def test_github_plan_step_records_0_and_the_comment_is_the_plan(pr: ConfigRepo) -> None:
    code, plan = github_plan(pr)
    assert code == "code=0\n"
    assert plan.startswith("## Konorkestra plan") and "| `checkout` | checkout-api 2 → 3 |" in plan
    assert github_comment(pr, "0") == f"{MARKER}\n{plan}"


def test_github_invalid_change_records_1_and_the_comment_lists_diagnostics(
    pr: ConfigRepo,
) -> None:
    make_invalid(pr)
    code, plan = github_plan(pr)
    assert code == "code=1\n" and "**The change does not validate**" in plan
    assert github_comment(pr, "1") == f"{MARKER}\n{plan}"


def test_github_trouble_records_2_and_the_comment_points_at_the_log(pr: ConfigRepo) -> None:
    git_dir = pr.work / ".git"
    (git_dir / "refs" / "remotes" / "origin" / "main").unlink()  # no base branch: trouble
    code, plan = github_plan(pr)
    assert code == "code=2\n" and plan == ""
    comment = github_comment(pr, "2")
    assert comment.startswith(MARKER) and "could not run** (exit 2)" in comment
    assert "https://ci.example/run/1" in comment


def gitlab_plan(repo: ConfigRepo) -> tuple[int, str]:
    """Run the job's script up to the posting (the curl calls); return (exit, comment.md)."""
    script = gitlab_job()["script"]
    start = next(i for i, item in enumerate(script) if item.startswith("code=0"))
    post = next(i for i, item in enumerate(script) if "curl" in item)
    lines = [*script[start:post], *script[post + 1 :]]
    proc = bash("\n".join(lines), repo.work, CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main",
                KONORCTL_CENTER="", CI_JOB_URL="https://gitlab.example/job/1")  # fmt: skip
    return proc.returncode, (repo.work / "comment.md").read_text()


def test_gitlab_job_passes_and_the_note_is_the_plan(pr: ConfigRepo) -> None:
    code, comment = gitlab_plan(pr)
    plan = (pr.work / "plan.md").read_text()
    assert code == 0 and plan.startswith("## Konorkestra plan")
    assert comment == f"{MARKER}\n{plan}"


def test_gitlab_job_fails_on_an_invalid_change_after_writing_the_note(pr: ConfigRepo) -> None:
    make_invalid(pr)
    code, comment = gitlab_plan(pr)
    assert code == 1 and comment.startswith(MARKER)
    assert "**The change does not validate**" in comment
