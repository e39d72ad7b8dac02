"""Issue 18 leftovers: user text is never rich markup, the same connection flags
everywhere, ``-o wide`` columns, and ``--timeout``.

What failed before: a commit subject ``[wip] fix`` lost ``[wip]`` in every
table and ``[/]`` crashed with a traceback; ``diff``, ``plan`` and ``audit
export`` refused ``--ca``/``--context`` after the subcommand and ``plan`` never
used the logged-in context; ``-o wide`` showed nothing more for ``releases``,
``nodes`` or ``rollouts``; a Center that never answers held every command for
30 seconds, whatever the user wanted. Every command runs through the real click
tree against real servers on loopback (:mod:`tests.cli.loopback`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from konorkestra.cli.konorctl import cli
from konorkestra.cli.output import print_table
from konorkestra.cli.rollout_view import rollouts_table
from tests.cli.loopback import (
    NODE,
    Server,
    closed_port,
    json_server,
    silent_server,
    tls_server,
)
from tests.cli.planrepo import open_pr, seeded

TRICKY = "[wip] fix [/] and [bold]not bold[/bold] \\"
"""Text that rich would read as markup: a tag it drops, a close with nothing open."""

RELEASE_A = "checkout-1-0a1b2c3d4e5f6a7b"
RELEASE_B = "checkout-2-8c9d0e1f2a3b4c5d"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CENTER", "TOKEN", "CA", "CONTEXT", "TIMEOUT"):
        monkeypatch.delenv(f"KONORCTL_{name}", raising=False)
    monkeypatch.setenv("KONORCTL_CONFIG", str(tmp_path / "konorctl.yaml"))
    monkeypatch.delenv("COLUMNS", raising=False)


def konorctl(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def context_file(tmp_path: Path, center: str) -> None:
    """A config file whose current context ``lab`` names ``center``."""
    (tmp_path / "konorctl.yaml").write_text(
        f"current-context: lab\ncontexts:\n  lab: {{center: '{center}'}}\n"
    )


def release(**extra: Any) -> dict[str, Any]:
    return {
        "id": RELEASE_B,
        "group": "checkout",
        "sequence": 2,
        "state": "active",
        "digest": "sha256:" + "d" * 64,
        "commit": "c0ffee" * 6 + "abcd",
        "configsets": [{"name": "checkout-api", "version": 2}],
        "policy": {"name": "canary", "strategy": "canary"},
        "previous_id": RELEASE_A,
        "reason": TRICKY,
        "created_by": "alice",
        "created_at": "2026-12-02T07:00:00Z",
        "expires_at": "2027-12-02T07:00:00Z",
        **extra,
    }


def rollout_status(**extra: Any) -> dict[str, Any]:
    return {
        "group": "checkout",
        "release": {"id": RELEASE_B, "sequence": 2},
        "stable": {"id": RELEASE_A, "sequence": 1},
        "policy": {"name": "canary"},
        "phase": "paused",
        "step": 0,
        "steps": 3,
        "nodes": {"targeted": 1, "enrolled": 10, "stable": 9},
        "bake_left_seconds": None,
        "reason": TRICKY,
        "started_at": "2026-12-02T07:18:53.123Z",
        "updated_at": "2026-12-02T07:20:01.5Z",
        **extra,
    }


COMMIT = {
    "sha": "ab" * 20,
    "status": "rejected",
    "subject": TRICKY,
    "author": "[red]mallory[/]",
    "committed_at": "2026-12-02T07:00:00Z",
    "releases": [],
    "diagnostics": [
        {
            "severity": "error",
            "code": "x[/]",
            "message": TRICKY,
            "hint": TRICKY,
            "file": "groups/[a].yaml",
            "line": 1,
        }
    ],
}


@pytest.fixture
def center() -> Iterator[Server]:
    answers = {
        "/v1/releases": {"releases": [release()]},
        "/v1/groups/checkout": {"convergence": None},
        "/v1/rollouts": {"rollouts": [rollout_status()]},
        "/v1/nodes": {
            "nodes": [
                {**NODE, "cert_serial": "0af3", "created_at": "2026-11-30", "revoked_at": None}
            ]
        },
        f"/v1/commits/{COMMIT['sha']}": COMMIT,
        "/v1/commits": {"commits": [{**COMMIT, "errors": 1, "first_diagnostic": None}]},
    }
    with json_server(answers) as server:
        yield server


# -- 1. user text is plain text ------------------------------------------------------------


def test_table_cells_are_plain_text_not_markup(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(None, ["subject", "n"], [(TRICKY, None), ("[wip] fix", 1)], "none")
    out = capsys.readouterr().out
    assert TRICKY in out and "[wip] fix" in out


@pytest.mark.parametrize(
    "args",
    [
        ("releases", "-o", "wide"),
        ("rollouts",),
        ("commits", "-o", "wide"),
        ("commits", "show", COMMIT["sha"]),
    ],
    ids=" ".join,
)
def test_user_text_prints_as_itself(center: Server, args: tuple[str, ...]) -> None:
    result = konorctl(*args, "--center", center.url)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    flat = " ".join(result.stdout.split())  # a table may fold a long cell
    assert "[wip] fix [/] and [bold]not bold[/bold]" in flat, flat


def test_commits_show_keeps_every_bracket(center: Server) -> None:
    out = konorctl("commits", "show", COMMIT["sha"], "--center", center.url).stdout
    assert f"  {TRICKY} — [red]mallory[/]," in out
    assert f"groups/[a].yaml:1: error: {TRICKY} [x[/]]" in out
    assert f"hint: {TRICKY}" in out


def test_rollouts_reason_is_not_markup() -> None:
    from rich.console import Console

    console = Console(width=400, record=True)
    console.print(rollouts_table([rollout_status()], wide=True))
    assert TRICKY in console.export_text()


def test_diff_lines_print_values_as_they_are() -> None:
    from rich.console import Console

    from konorkestra.cli.diff_view import line

    console = Console(width=400, record=True, highlight=False)
    for text in (f"~ /note: {TRICKY}", f"+ /path: {TRICKY}", TRICKY):
        line(console, 4, text)
    out = console.export_text().splitlines()
    assert out == [f"    ~ /note: {TRICKY}", f"    + /path: {TRICKY}", f"    {TRICKY}"]


def test_validate_prints_a_bracketed_file_name_as_it_is(tmp_path: Path) -> None:
    name = "[wip][bold]x.yaml"
    (tmp_path / "groups").mkdir()
    (tmp_path / "groups" / name).write_text(
        "apiVersion: konorkestra.io/v1\nkind: Group\nmetadata:\n  name: web\nspec: {}\n"
    )
    result = konorctl("validate", str(tmp_path))
    assert result.exit_code == 1, result.output
    assert f"groups/{name}:" in result.stdout and "[schema]" in result.stdout, result.stdout


# -- 2. diff, plan and audit export take the shared connection flags -----------------------


def test_diff_of_releases_uses_context_after_the_subcommand(tmp_path: Path) -> None:
    with closed_port() as port:
        (tmp_path / "konorctl.yaml").write_text(
            f"contexts:\n  lab: {{center: '{port.url}'}}\n"  # not current: --context picks it
        )
        result = konorctl("diff", RELEASE_A, RELEASE_B, "--context", "lab", "--timeout", "5")
    assert result.exit_code == 2
    assert f"cannot connect to the Center at {port.url}" in result.stderr, result.stderr


def pr(tmp_path: Path) -> list[str]:
    """``plan`` arguments for a PR that changes two Groups."""
    repo = seeded(tmp_path / "repo")
    open_pr(repo)
    return ["plan", str(repo.work), "--rev", "pr", "--against", "origin/main"]


def test_plan_asks_the_logged_in_context(tmp_path: Path) -> None:
    args = pr(tmp_path)
    with closed_port() as port:
        context_file(tmp_path, port.url)
        result = konorctl(*args)
    # the context's Center is asked (and is down): the plan says so, not "no --center"
    assert result.exit_code == 0, result.output
    assert f"offline (cannot connect to the Center at {port.url}" in result.stdout, result.stdout


def test_plan_takes_ca_and_context_after_the_subcommand(tmp_path: Path) -> None:
    result = konorctl(*pr(tmp_path), "--context", "nope", "--ca", "x.pem")
    assert result.exit_code == 2 and "No such option" not in result.output
    assert "nope" in result.stderr  # the unknown context is named


def test_audit_export_takes_ca_after_the_subcommand(tmp_path: Path) -> None:
    with tls_server(tmp_path, ["127.0.0.1"]) as server:
        out = tmp_path / "audit.jsonl"
        assert server.ca_file is not None
        result = konorctl(
            "audit", "export", "--center", server.url, "--ca", str(server.ca_file), "-o", str(out)
        )
    # TLS verified with --ca; the echo server's answer is no checkpoint
    assert result.exit_code == 1, result.output
    assert "malformed checkpoint" in result.stderr, result.stderr
    assert not out.exists()


# -- 3. -o wide ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "wide_only"),
    [
        ("releases", ["digest", "sha256:" + "d" * 64, "source commit", RELEASE_A, "2027-12-02"]),
        ("nodes", ["labels", "dc=fra1", "cert serial", "0af3", "enrolled", "2026-11-30"]),
        (
            "rollouts",
            [
                "stable",
                RELEASE_A,
                "policy",
                "canary",
                "2026-12-02 07:18:53Z",
                "2026-12-02 07:20:01Z",
            ],
        ),
    ],
)
def test_wide_adds_columns(center: Server, command: str, wide_only: list[str]) -> None:
    table = konorctl(command, "--center", center.url).stdout
    wide = konorctl(command, "--center", center.url, "-o", "wide").stdout
    for text in wide_only:
        assert text in wide, wide
        assert text not in table, table


# -- 4. --timeout --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    [("--timeout", "0.5", "nodes"), ("nodes", "--timeout", "0.5"), ("env",)],
    ids=["before", "after", "env"],
)
def test_timeout_bounds_a_silent_center(how: tuple[str, ...]) -> None:
    with silent_server() as server:
        args = ["nodes"] if how == ("env",) else list(how)
        env = {"KONORCTL_TIMEOUT": "0.5"} if how == ("env",) else None
        started = time.monotonic()
        result = konorctl(*args, "--center", server.url, env=env)
        took = time.monotonic() - started
    assert result.exit_code == 1 and "no answer in time" in result.output, result.output
    assert took < 10, took  # the default is 30 s


@pytest.mark.parametrize("command", ["diff", "audit"])
def test_timeout_reaches_diff_and_audit_export(tmp_path: Path, command: str) -> None:
    args = {
        "diff": ["diff", RELEASE_A, RELEASE_B],
        "audit": ["audit", "export", "-o", str(tmp_path / "a.jsonl")],
    }[command]
    with silent_server() as server:
        started = time.monotonic()
        result = konorctl(*args, "--center", server.url, "--timeout", "0.5")
        took = time.monotonic() - started
    assert "no answer in time" in result.output + result.stderr, result.output
    assert took < 10, took


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "nan", "inf"])
def test_timeout_must_be_positive_seconds(bad: str) -> None:
    for args, env in (
        (["--timeout", bad, "nodes"], None),
        (["nodes", "--timeout", bad], None),
        (["nodes"], {"KONORCTL_TIMEOUT": bad}),
    ):
        result = konorctl(*args, "--center", "http://127.0.0.1:1", env=env)
        assert result.exit_code == 2, result.output
        assert "the timeout is a number of seconds > 0" in result.output
        assert "Traceback" not in result.output


def test_timeout_flag_beats_env_beats_default() -> None:
    from konorkestra.cli.client import DEFAULT_TIMEOUT, Flags, choose
    from konorkestra.cli.contexts import Config

    assert choose(Flags(), Flags(), Config()).timeout == DEFAULT_TIMEOUT == 30
    assert choose(Flags(), Flags(timeout="5"), Config()).timeout == 5
    assert choose(Flags(timeout="2.5"), Flags(timeout="5"), Config()).timeout == 2.5
    after = Flags(timeout="1").over(Flags(timeout="2"))  # after the subcommand, before it
    assert choose(after, Flags(timeout="5"), Config()).timeout == 1


def test_a_piped_rollout_watch_never_prints_the_same_line_twice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from konorkestra.cli.rollout_cmd import _watch

    def state(phase: str, committed: int) -> dict[str, Any]:
        wave = {
            "step": 0,
            "percent": 100,
            "bake_seconds": 0,
            "selector": {},
            "state": "current",
            "nodes": 2,
            "committed": committed,
            "applied": 0,
            "failed": 0,
            "stale": 0,
        }
        policy = {
            "name": "canary",
            "strategy": "canary",
            "approval": "auto",
            "onFailure": "rollback",
        }
        return rollout_status(
            phase=phase, waves=[wave], guards=[], policy=policy, approvals=[], reason=None, steps=1
        )

    # the wave's committed count moves, the line (phase, step, targeted) does not
    polls = iter([state("waving", 1), state("waving", 2), state("completed", 2)])
    assert _watch(lambda: next(polls), state("waving", 0), 0, "table") == 0
    lines = [
        line.split(" ", 1)[1]
        for line in capsys.readouterr().out.splitlines()
        if line[:2].isdigit() and "checkout:" in line
    ]
    assert lines == [
        f"checkout: {RELEASE_B} (seq 2): waving, step 1/1, 1/10 nodes targeted",
        f"checkout: {RELEASE_B} (seq 2): completed, step 1/1, 1/10 nodes targeted",
    ], lines
