"""Exec hooks: environment, exit status as an ack, timeouts, and their config."""

from __future__ import annotations

import asyncio
import os
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from konorkestra.agent.config import AgentConfig, ConfigError, HookConfig
from konorkestra.agent.hooks import record, run_hook
from konorkestra.agent.visibility import Visibility


@dataclass(frozen=True)
class Rel:
    group: str
    release_id: str
    sequence: int
    digest: str
    path: Path


def rel(tmp_path: Path) -> Rel:
    return Rel("checkout", "checkout-4-0123456789abcdef", 4, "sha256:" + "ab" * 32, tmp_path)


def sh(script: str, timeout: float = 10.0) -> HookConfig:
    return HookConfig(("/bin/sh", "-c", script), timeout)


def test_hook_gets_the_release_in_its_environment_and_acks_applied(tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    hook = sh(f'echo "$KONORKESTRA_GROUP $KONORKESTRA_RELEASE $KONORKESTRA_SEQUENCE '
              f'$KONORKESTRA_CONFIG" > {out}')  # fmt: skip
    result = asyncio.run(run_hook(hook, rel(tmp_path)))
    assert (result.status, result.error, result.exit_code) == ("applied", None, 0)
    group, release, seq, config = out.read_text().split()
    assert (group, release, seq) == ("checkout", "checkout-4-0123456789abcdef", "4")
    assert config == str(tmp_path / "release.json")
    assert result.peer.pid != os.getpid() and result.peer.uid == os.getuid()

    vis = Visibility()
    record(vis, result)
    [view] = vis.snapshot()
    assert (view.client, view.release, view.ack_status) == (
        "hook:checkout", "checkout-4-0123456789abcdef", "applied")  # fmt: skip
    assert [e.kind for e in vis.drain().events] == ["delivery", "ack"]


def test_nonzero_exit_is_a_failed_ack_with_the_last_stderr_line(tmp_path: Path) -> None:
    result = asyncio.run(run_hook(sh("echo starting >&2; echo 'bad config' >&2; exit 3"),
                                  rel(tmp_path)))  # fmt: skip
    assert result.status == "failed" and result.exit_code == 3
    assert result.error == "exit status 3: bad config"


def test_a_hook_past_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = asyncio.run(run_hook(sh(f"sleep 30 & echo $! > {pidfile}; wait", timeout=0.5),
                                  rel(tmp_path)))  # fmt: skip
    assert time.monotonic() - started < 5
    assert result.status == "failed" and result.error == "timed out after 0.5s"
    child = int(pidfile.read_text())

    def dead() -> bool:
        try:
            stat = Path(f"/proc/{child}/stat").read_text()
        except FileNotFoundError:
            return True
        return stat[stat.rfind(")") + 2] == "Z"  # killed, not yet reaped

    deadline = time.monotonic() + 5
    while not dead():
        assert time.monotonic() < deadline, "the hook's child survived the timeout"
        time.sleep(0.02)


def test_a_missing_command_is_a_failed_ack(tmp_path: Path) -> None:
    hook = HookConfig((str(tmp_path / "no-such-program"),), 5.0)
    result = asyncio.run(run_hook(hook, rel(tmp_path)))
    assert result.status == "failed" and result.error is not None
    assert result.error.startswith("cannot run")


def test_config_file_hooks_and_errors(tmp_path: Path) -> None:
    text = """
allow_uids = [0, 1000]
keep = 3
[hooks.checkout]
command = "systemctl reload 'nginx web'"
timeout = 5
[hooks.payments]
command = ["/usr/bin/true"]
"""
    cfg = AgentConfig.parse(tomllib.loads(text))
    assert cfg.allow_uids == frozenset({0, 1000}) and cfg.keep == 3
    assert cfg.hooks["checkout"] == HookConfig(("systemctl", "reload", "nginx web"), 5.0)
    assert cfg.hooks["payments"].timeout == 30.0
    (tmp_path / "agent.toml").write_text(text)
    assert AgentConfig.load(tmp_path) == cfg
    assert AgentConfig.load(tmp_path / "nowhere") == AgentConfig()
    for bad, word in [
        ({"keeep": 3}, "keeep"),
        ({"keep": 0}, "keep"),
        ({"hooks": {"g": {"command": []}}}, "hooks.g"),
        ({"hooks": {"g": {"command": "x", "timeout": -1}}}, "hooks.g.timeout"),
        ({"allow_uids": ["root"]}, "allow_uids"),
    ]:
        with pytest.raises(ConfigError, match=word):
            AgentConfig.parse(bad)
    assert cfg.with_overrides(socket=tmp_path / "s").socket_path(tmp_path) == tmp_path / "s"
