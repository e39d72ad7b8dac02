"""Agent start-up refusals and ``konorkestra agent status`` without a running agent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from konorkestra.agent.daemon import StartupError, check_permissions
from konorkestra.cli.agent_cmd import agent


def enrolled(tmp_path: Path, mode: int = 0o700, key_mode: int = 0o600) -> Path:
    data = tmp_path / "data"
    (data / "identity").mkdir(parents=True)
    key = data / "identity" / "node.pem"
    key.write_text("-----BEGIN CERTIFICATE-----\n")
    key.chmod(key_mode)
    data.chmod(mode)
    return data


def test_refuses_a_data_dir_or_key_others_can_read(tmp_path: Path) -> None:
    check_permissions(enrolled(tmp_path / "ok"))
    with pytest.raises(StartupError, match="chmod o-rwx"):
        check_permissions(enrolled(tmp_path / "a", mode=0o755))
    with pytest.raises(StartupError, match="chmod 600"):
        check_permissions(enrolled(tmp_path / "b", key_mode=0o640))
    with pytest.raises(StartupError, match="not enrolled"):
        (tmp_path / "c").mkdir(mode=0o700)
        check_permissions(tmp_path / "c")


def test_run_exits_with_one_line_and_status_works_offline(tmp_path: Path) -> None:
    data = enrolled(tmp_path, mode=0o755)
    out = CliRunner().invoke(agent, ["run", "--data", str(data)])
    assert out.exit_code == 1 and "accessible by others" in out.output
    bad = tmp_path / "cfg"
    bad.mkdir(mode=0o700)
    (bad / "agent.toml").write_text("keeep = 3\n")
    out = CliRunner().invoke(agent, ["run", "--data", str(bad)])
    assert out.exit_code == 1 and "keeep" in out.output

    status = CliRunner().invoke(agent, ["status", "--data", str(tmp_path / "none"), "-o", "json"])
    assert status.exit_code == 0
    info = json.loads(status.output)
    assert info["enrolled"] is False and info["running"] is False
    text = CliRunner().invoke(agent, ["status", "--data", str(tmp_path / "none")])
    assert "not enrolled" in text.output and "not running" in text.output


def test_status_wait_gives_up_after_its_timeout_with_the_status(tmp_path: Path) -> None:
    data = enrolled(tmp_path)  # enrolled, but no agent runs: never serving
    out = CliRunner().invoke(agent, ["status", "--data", str(data), "--wait", "--timeout", "1s"])
    assert out.exit_code == 1
    assert "not serving every group after 1s" in out.output and "not running" in out.output
    bad = CliRunner().invoke(agent, ["status", "--data", str(data), "--wait", "--timeout", "soon"])
    assert bad.exit_code == 2 and "--timeout" in bad.output
