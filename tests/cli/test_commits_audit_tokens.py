"""``konorctl commits``, ``audit`` and ``api-token`` against a real Center (issue 18).

What failed before: ``commits`` showed ``rejected | 1`` but not why; ``audit
--limit 5`` showed the five *oldest* events, their details wrapping over
several lines; API tokens could only be made with curl. ``konorctl`` runs as a
real process; the terminal cases run it on a real pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from konorkestra.demo import CenterHandle, ConfigRepo, Stack, examples_dir
from konorkestra.demo.procs import tool
from tests.cli.terminal import Terminal
from tests.helpers.configrepo import BROKEN_GROUP

WHY = "groups/broken.yaml:6:11: names Policy 'no-such-policy', which does not exist"


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterHandle]:
    """A Center that ingested an accepted commit, then a rejected one."""
    root = tmp_path_factory.mktemp("cli")
    repo = ConfigRepo.create(root, seed=examples_dir() / "config-repo")
    repo.push()
    with Stack(root) as stack:
        handle = stack.center(repo.bare)
        handle.wait_commit(repo.head())
        repo.write("groups/broken.yaml", BROKEN_GROUP)
        repo.commit("a Group whose Policy does not exist")
        repo.push()
        handle.wait_commit(repo.head())
        yield handle


def on_terminal(center: CenterHandle, *args: str, columns: int) -> str:
    """``konorctl ARGS`` with stdout on a real pseudo-terminal ``columns`` wide; its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONORCTL_")}
    env.update(center.konorctl_env(), NO_COLOR="1")
    with Terminal([*tool("konorctl"), *args], env, columns=columns) as term:
        assert term.wait(timeout=60) == 0, term.text
        return term.text


def rows(table: str) -> list[str]:
    return [line for line in table.splitlines() if line.startswith("│")]


def test_commits_shows_why_a_commit_was_rejected(center: CenterHandle) -> None:
    [rejected, accepted] = center.get("/v1/commits")["commits"]
    assert rejected["first_diagnostic"]["code"] == "missing-policy"
    assert rejected["diagnostics_count"] == 1 and accepted["first_diagnostic"] is None

    piped = center.konorctl("commits", columns=80).stdout
    [line] = [r for r in rows(piped) if "rejected" in r]
    assert WHY in line  # whole when piped, on the commit's own line
    assert "why" in piped.splitlines()[1]

    wide = center.konorctl("commits", "-o", "wide").stdout
    [line] = [r for r in rows(wide) if "rejected" in r]
    assert WHY in line and "Demo Operator" in line  # -o wide adds the errors and the author

    shown = on_terminal(center, "commits", columns=120)
    assert all(len(line) <= 120 for line in shown.splitlines()), shown
    [line] = [r for r in rows(shown) if "rejected" in r]  # one line per commit
    assert "groups/broken.yaml:6:11: names P" in line and line.rstrip(" │").endswith("…")


def test_audit_shows_the_newest_first_and_reverse_the_oldest_first(center: CenterHandle) -> None:
    head = center.get("/v1/audit", order="desc", limit=1)["events"][0]["seq"]
    newest = json.loads(center.konorctl("audit", "--limit", "5", "-o", "json").stdout)
    assert [e["seq"] for e in newest] == list(range(head, head - 5, -1))
    reverse = json.loads(center.konorctl("audit", "--limit", "5", "--reverse", "-o", "json").stdout)
    assert [e["seq"] for e in reverse] == list(range(head - 4, head + 1))
    page = json.loads(center.konorctl("audit", "--before", "4", "-o", "json").stdout)
    assert [e["seq"] for e in page] == [3, 2, 1]

    table = center.konorctl("audit", "--limit", "5", columns=80).stdout
    assert [int(r.split("│")[1]) for r in rows(table)] == list(range(head, head - 5, -1))
    everything = center.konorctl("audit", columns=80).stdout
    rejected = next(r for r in rows(everything) if "commit.rejected" in r)
    assert "errors=1" in rejected and 'subject="a Group whose Policy does not exist"' in rejected


def test_audit_details_stay_on_one_line_on_a_terminal(center: CenterHandle) -> None:
    shown = on_terminal(center, "audit", "--limit", "8", columns=120)
    lines = rows(shown)
    assert len(lines) == 8, shown  # one line per event: nothing wraps
    assert all(len(line) <= 120 for line in shown.splitlines()), shown
    assert any(line.rstrip(" │").endswith("…") for line in lines), shown
    assert all(".000" not in line and "T" not in line.split("│")[2] for line in lines)


def test_api_tokens_are_created_listed_and_revoked(center: CenterHandle) -> None:
    made = center.konorctl("api-token", "create", "--role", "viewer", "--name", "grafana")
    secret = made.stdout.split("token: ")[1].split()[0]
    assert secret.startswith("kt_") and "shown only once" in made.stderr
    token_id = secret[3:15]

    listed = center.konorctl("api-token", "list").stdout
    assert "grafana" in listed and token_id in listed and secret not in listed
    as_json = center.konorctl("api-token", "list", "-o", "json").stdout
    assert secret.split(".")[1] not in as_json

    env = {"KONORCTL_TOKEN": secret}
    viewer = _konorctl(center, env, "groups")
    assert viewer.returncode == 0 and "checkout" in viewer.stdout, viewer.stderr
    refused = _konorctl(center, env, "api-token", "create", "--role", "admin", "--name", "x")
    assert refused.returncode == 1 and "forbidden" in refused.stderr

    revoked = center.konorctl("api-token", "revoke", token_id)
    assert f"revoked API token {token_id}" in revoked.stdout
    after = _konorctl(center, env, "groups")
    assert after.returncode == 1 and "unauthenticated" in after.stderr
    assert "Traceback" not in after.stderr
    again = center.konorctl("api-token", "revoke", token_id, check=False)
    assert again.returncode == 1 and "no live token" in again.stderr


def test_a_bad_role_or_name_is_a_usage_error(center: CenterHandle) -> None:
    for args in (("--role", "root", "--name", "x"), ("--role", "viewer", "--name", "")):
        bad = center.konorctl("api-token", "create", *args, check=False)
        assert bad.returncode == 2, (args, bad.stderr)
    names = [t["name"] for t in center.get("/v1/tokens")["tokens"]]
    assert "x" not in names and "" not in names


def _konorctl(
    center: CenterHandle, extra: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONORCTL_")}
    env.update(center.konorctl_env(), NO_COLOR="1", COLUMNS="100", **extra)
    return subprocess.run([*tool("konorctl"), *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)  # fmt: skip


def test_every_new_help_fits_80_columns_and_shows_an_example() -> None:
    from click.testing import CliRunner

    from konorkestra.cli.konorctl import cli

    commands = [("groups",), ("groups", "show"), ("api-token",), ("api-token", "create"),
                ("api-token", "list"), ("api-token", "revoke"), ("commits",),
                ("commits", "show"), ("audit",), ("token",)]  # fmt: skip
    for args in commands:
        result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=80)
        assert result.exit_code == 0, (args, result.output)
        assert "Example:" in result.output, args
        assert all(len(line) <= 80 for line in result.output.splitlines()), result.output

    def said(*args: str) -> str:
        return " ".join(CliRunner().invoke(cli, [*args, "--help"]).output.split())

    assert "Not join tokens" in said("api-token") and "`konorctl token`" in said("api-token")
    assert "Not API tokens" in said("token") and "`konorctl api-token`" in said("token")
