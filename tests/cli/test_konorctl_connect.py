"""One helpful line per TLS/connection failure, each against a real loopback server.

Every test makes a real request (uvicorn over real TLS, a real refused port, a
real silent listener) and checks the one line ``konorctl`` would print.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from konorkestra.cli.client import DEFAULT_CENTER, CenterClient, CenterError, Settings
from konorkestra.cli.connerrors import Attempt, Failure, explain
from konorkestra.cli.konorctl import cli
from tests.cli.loopback import closed_port, http_server, make_ca, silent_server, tls_server


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CENTER", "TOKEN", "CA", "CONFIG", "CONTEXT"):
        monkeypatch.delenv(f"KONORCTL_{name}", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def failure(settings: Settings, timeout: float = 10.0) -> str:
    with CenterClient(settings, timeout=timeout) as c, pytest.raises(CenterError) as err:
        c.get("/v1/nodes")
    text = err.value.format_message()
    assert "\n" not in text and "Traceback" not in text
    return text


def test_the_right_ca_connects(tmp_path: Path) -> None:
    with (
        tls_server(tmp_path, ["127.0.0.1"]) as server,
        CenterClient(Settings(server.url, "kt_x.y", str(server.ca_file))) as c,
    ):
        assert c.get("/v1/nodes")["authorization"] == "Bearer kt_x.y"


def test_ca_missing_says_pass_ca_and_where_the_centers_ca_is(tmp_path: Path) -> None:
    with tls_server(tmp_path, ["127.0.0.1"]) as server:
        text = failure(Settings(server.url))
    assert "not trusted (no CA given): pass --ca FILE or set KONORCTL_CA" in text
    assert str(tmp_path / "data" / "konorkestra" / "center" / "ca.pem") in text


def test_wrong_ca_names_the_ca_file_and_the_url(tmp_path: Path) -> None:
    _, other = make_ca(tmp_path / "other-ca")
    with tls_server(tmp_path, ["127.0.0.1"]) as server:
        text = failure(Settings(server.url, None, str(other)))
    assert f"the certificate at {server.url} is not signed by CA {other}" in text


def test_nothing_listening_asks_whether_the_center_runs() -> None:
    with closed_port() as server:
        text = failure(Settings(server.url))
    assert f"nothing is listening at {server.hostport}" in text
    assert "is `konorkestra center` running?" in text


def test_plain_http_to_a_tls_port_says_use_https(tmp_path: Path) -> None:
    with tls_server(tmp_path, ["127.0.0.1"]) as server:
        text = failure(Settings(server.url.replace("https://", "http://")))
    assert f"{server.hostport} speaks TLS; use https://{server.hostport}" in text


def test_https_to_a_plain_http_port_says_use_http() -> None:
    with http_server() as server:
        text = failure(Settings(server.url.replace("http://", "https://")))
    assert f"{server.hostport} speaks plain HTTP, not TLS; use http://" in text


def test_hostname_mismatch_names_the_host_and_the_fix(tmp_path: Path) -> None:
    with tls_server(tmp_path, ["center.example"]) as server:
        text = failure(Settings(server.url, None, str(server.ca_file)))
    assert "certificate is not valid for '127.0.0.1'" in text
    assert "--tls-san 127.0.0.1" in text


def test_a_silent_server_times_out_with_one_line() -> None:
    with silent_server() as server:
        text = failure(Settings(server.url), timeout=0.3)
    assert "no answer in time" in text and server.url in text


def test_a_missing_ca_file_is_named_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(CenterError, match=r"CA file .*nope\.pem: not found"):
        CenterClient(Settings("https://127.0.0.1:1", None, str(tmp_path / "nope.pem")))


def test_nothing_configured_defaults_to_the_centers_own_listen_address() -> None:
    settings = Settings.resolve(center=None, token=None)
    assert settings.center == DEFAULT_CENTER == "https://127.0.0.1:7400"
    assert not settings.configured
    text = explain(Failure.REFUSED, Attempt(settings.center, None, settings.configured))
    assert text.endswith("(no Center is configured: run konorctl login or pass --center)")
    configured = explain(Failure.REFUSED, Attempt(settings.center, None, True))
    assert "no Center is configured" not in configured


def test_the_cli_prints_the_line_and_exits_1(tmp_path: Path) -> None:
    with tls_server(tmp_path, ["127.0.0.1"]) as server:
        result = CliRunner().invoke(cli, ["nodes", "--center", server.url])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "pass --ca FILE" in result.stderr


def test_global_ca_before_the_subcommand_is_used(tmp_path: Path) -> None:
    with tls_server(tmp_path, ["127.0.0.1"]) as server:
        args = ["--ca", str(server.ca_file), "nodes", "--center", server.url, "-o", "json"]
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert '"status": "active"' in result.stdout
