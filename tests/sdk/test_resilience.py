"""Agent restarts and absence: reconnect, resume without miss or repeat, disk fallback."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import konorkestra.sdk as sdk
from konorkestra.testing.memstate import InMemoryState
from konorkestra.testing.serverthread import ServerThread


def _write_release(data: Path, seq: int, timeout_ms: int) -> None:
    folder = data / "current" / "checkout"
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "group": "checkout",
        "release": f"checkout-{seq}",
        "sequence": seq,
        "digest": "sha256:" + "0" * 64,
        "committed_at": "2026-11-26T23:59:00Z",
        "config": {"checkout-api": {"timeoutMs": timeout_ms}},
    }
    (folder / "release.json").write_text(json.dumps(doc))


def test_restart_with_commits_while_down_misses_nothing_repeats_nothing(
    tmp_path: Path,
    state: InMemoryState,
    publish: Callable[..., None],
    acks: Callable[..., list[Any]],
    recorder: Any,
    wait_until: Callable[..., None],
) -> None:
    path = tmp_path / "agent.sock"
    first = ServerThread(state, path).start()
    with sdk.connect(path) as client:
        rec = recorder()
        client.watch("checkout", rec)
        publish(first, 2)
        rec.wait_for(1)
        first.stop()
        wait_until(lambda: not client.connected)
        state.put("checkout", release_id="checkout-3", sequence=3, config={"a": {"v": 3}})
        with ServerThread(state, path) as second:
            rec.wait_for(2)
            publish(second, 4)
            rec.wait_for(3)
            wait_until(lambda: len(acks(second)) == 2)
            assert rec.calls == [(2, 1), (3, 2), (4, 3)]
            assert [a[:2] for a in acks(second)] == [
                ("checkout-3", "applied"),
                ("checkout-4", "applied"),
            ]
            assert client.get_config("checkout").sequence == 4


def test_ack_made_while_disconnected_is_sent_after_reconnect(
    tmp_path: Path,
    state: InMemoryState,
    publish: Callable[..., None],
    acks: Callable[..., list[Any]],
    wait_until: Callable[..., None],
) -> None:
    import threading

    path = tmp_path / "agent.sock"
    first = ServerThread(state, path).start()
    release_callback = threading.Event()
    entered = threading.Event()
    with sdk.connect(path) as client:

        def blocking(new: sdk.Config, old: sdk.Config | None) -> None:
            entered.set()
            assert release_callback.wait(10)
            raise RuntimeError("reload failed")

        client.watch("checkout", blocking)
        publish(first, 2)
        assert entered.wait(10)
        first.stop()  # the ack for checkout-2 cannot be sent now
        wait_until(lambda: not client.connected)
        release_callback.set()
        with ServerThread(state, path) as second:
            wait_until(lambda: acks(second))
            assert acks(second)[0] == ("checkout-2", "failed", "RuntimeError: reload failed")


def test_disk_fallback_then_live_when_the_agent_appears(
    tmp_path: Path,
    recorder: Any,
    publish: Callable[..., None],
    wait_until: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _write_release(tmp_path, 1, 700)
    path = tmp_path / "agent.sock"  # its directory holds current/: the data dir
    with caplog.at_level(logging.WARNING, logger="konorkestra.sdk"):
        client = sdk.connect(path, timeout=2)
    try:
        cfg = client.get_config("checkout")
        assert (cfg.source, cfg.release, cfg["checkout-api"]["timeoutMs"]) == (
            "disk",
            "checkout-1",
            700,
        )
        assert "agent unreachable" in caplog.text
        rec = recorder()
        client.watch("checkout", rec)
        state = InMemoryState()
        state.put("checkout", release_id="checkout-1", sequence=1, config=cfg.to_dict())
        with ServerThread(state, path) as srv:
            wait_until(lambda: client.get_config("checkout").source == "agent")
            assert client.get_config("checkout").release == "checkout-1"
            publish(srv, 2, {"checkout-api": {"timeoutMs": 900}})
            rec.wait_for(1)
            assert rec.calls == [(2, 1)]  # the same release going live is no change
    finally:
        client.close()


def test_agent_newer_than_disk_fires_callback(
    tmp_path: Path, recorder: Any, wait_until: Callable[..., None]
) -> None:
    _write_release(tmp_path, 1, 700)
    path = tmp_path / "agent.sock"
    with sdk.connect(path, data_dir=tmp_path, timeout=2) as client:
        rec = recorder()
        client.watch("checkout", rec)
        assert client.get_config("checkout").source == "disk"
        state = InMemoryState()
        state.put("checkout", release_id="checkout-5", sequence=5, config={"x": {"y": 1}})
        with ServerThread(state, path):
            rec.wait_for(1)
            assert rec.calls == [(5, 1)]
            assert client.get_config("checkout").source == "agent"


def test_no_agent_and_nothing_on_disk_is_unavailable(tmp_path: Path) -> None:
    with sdk.connect(tmp_path / "agent.sock", data_dir=tmp_path, timeout=2) as client:
        assert not client.connected
        with pytest.raises(sdk.UnavailableError, match="no release of 'checkout'"):
            client.get_config("checkout")


def test_socket_from_environment(agent: ServerThread, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KONORKESTRA_SOCKET", str(agent.server.path))
    with sdk.connect() as client:
        assert client.socket_path == agent.server.path
        assert client.get_config("checkout").source == "agent"
