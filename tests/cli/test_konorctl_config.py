"""``konorctl login --name`` and ``konorctl config``: named contexts in the config file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ruamel.yaml import YAML

from konorkestra.cli.client import Settings
from konorkestra.cli.contexts import redact
from konorkestra.cli.konorctl import cli
from tests.cli.loopback import Server, make_ca, tls_server

SECRET = "S3cr3tS3cr3tS3cr3t"
PROD = f"kt_0123456789ab.{SECRET}"
LAB = f"kt_ba9876543210.{SECRET}lab"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CENTER", "TOKEN", "CA", "CONFIG", "CONTEXT"):
        monkeypatch.delenv(f"KONORCTL_{name}", raising=False)
    monkeypatch.setenv("KONORCTL_CONFIG", str(tmp_path / "cfg" / "konorctl.yaml"))


@pytest.fixture
def server(tmp_path: Path) -> object:
    with tls_server(tmp_path, ["127.0.0.1", "localhost"]) as running:
        yield running


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def login(server: Server, name: str, token: str, host: str = "127.0.0.1") -> Result:
    url = server.url.replace("127.0.0.1", host)
    return run("login", "--name", name, "--center", url, "--ca", str(server.ca_file),
               "--token", token)  # fmt: skip


def config_path(tmp_path: Path) -> Path:
    return tmp_path / "cfg" / "konorctl.yaml"


def test_login_saves_a_named_context_0600_and_makes_it_current(
    tmp_path: Path, server: Server
) -> None:
    assert login(server, "prod", PROD).exit_code == 0
    result = login(server, "lab", LAB, host="localhost")
    assert result.exit_code == 0, result.output
    assert "as context 'lab'" in result.stdout
    assert stat.S_IMODE(config_path(tmp_path).stat().st_mode) == 0o600
    data = YAML(typ="safe").load(config_path(tmp_path).read_text())
    assert data["current-context"] == "lab"
    assert set(data["contexts"]) == {"prod", "lab"}
    assert Settings.resolve(center=None, token=None).token == LAB
    assert Settings.resolve(center=None, token=None, context="prod").center == server.url


def test_a_failed_login_saves_nothing(tmp_path: Path, server: Server) -> None:
    _, other = make_ca(tmp_path / "other")
    result = run("login", "--center", server.url, "--ca", str(other), "--token", PROD)
    assert result.exit_code == 1 and "is not signed by CA" in result.stderr
    assert not config_path(tmp_path).exists()


def test_login_takes_the_center_from_before_the_subcommand(server: Server) -> None:
    result = run("--center", server.url, "--ca", str(server.ca_file), "login", "--token", PROD)
    assert result.exit_code == 0, result.output
    assert Settings.resolve(center=None, token=None).center == server.url


def test_login_converts_the_old_flat_file_keeping_it_as_default(
    tmp_path: Path, server: Server
) -> None:
    config_path(tmp_path).parent.mkdir()
    config_path(tmp_path).write_text("center: https://old:7400\ntoken: kt_old.x\n")
    assert login(server, "prod", PROD).exit_code == 0
    assert Settings.resolve(center=None, token=None, context="default") == Settings(
        "https://old:7400", "kt_old.x"
    )


def test_get_contexts_marks_the_current_one_without_secrets(server: Server) -> None:
    login(server, "prod", PROD)
    login(server, "lab", LAB)
    result = run("config", "get-contexts")
    assert result.exit_code == 0
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in result.stdout.splitlines()]
    by_name = {row[1]: row for row in rows if len(row) == 5}
    assert by_name["lab"][0] == "*" and by_name["prod"][0] == ""
    assert by_name["prod"][4] == "kt_0123456789ab…"
    assert SECRET not in result.stdout


@pytest.mark.parametrize("fmt", [[], ["-o", "json"], ["-o", "yaml"]])
def test_config_view_never_prints_a_token_secret(server: Server, fmt: list[str]) -> None:
    login(server, "prod", PROD)
    result = run("config", "view", *fmt)
    assert result.exit_code == 0
    assert SECRET not in result.stdout
    data = YAML(typ="safe").load(result.stdout)  # JSON is YAML too
    assert data["current-context"] == "prod"
    assert data["contexts"]["prod"]["token"] == "kt_0123456789ab…"


def test_use_and_delete_context(server: Server) -> None:
    login(server, "prod", PROD)
    login(server, "lab", LAB)
    assert run("config", "use-context", "prod").exit_code == 0
    assert Settings.resolve(center=None, token=None).token == PROD
    unknown = run("config", "use-context", "nope")
    assert unknown.exit_code == 1 and "no context 'nope' (contexts: lab, prod)" in unknown.stderr
    assert run("config", "delete-context", "prod").exit_code == 0
    remaining = run("config", "get-contexts", "-o", "json").stdout
    assert '"lab"' in remaining and '"prod"' not in remaining


def test_redact_shows_at_most_the_public_id() -> None:
    assert redact(PROD) == "kt_0123456789ab…"
    assert redact("not-a-kt-token") == "<set>"
    assert redact("kt_../etc.secret") == "<set>"
