"""The fake agent's control protocol and invariants (``konorkestra.testing.fakeagent``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from konorkestra.testing.lineclient import LineClient
from konorkestra.testing.memstate import InMemoryState
from konorkestra.testing.serverthread import ServerThread

CONFIG = {"checkout-api": {"timeoutMs": 800}}


def _release(seq: int) -> dict[str, Any]:
    return {"group": "checkout", "release": f"checkout-{seq}", "sequence": seq, "config": CONFIG}


def _wait_for(what: str, cond: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[ServerThread]:
    state = InMemoryState.from_json({"groups": {"checkout": _release(3)}})
    with ServerThread(state, tmp_path / "agent.sock") as server:
        yield server


def _hello(client: LineClient) -> None:
    assert client.call({"id": 0, "op": "hello", "protocol": 1})["ok"] is True


def test_a_recorded_watch_is_registered(srv: ServerThread) -> None:
    """Invariant 1: publishes sent after ``requests`` listed a watch all reach it.

    A watch registered late would get only the newest release (the server's rule),
    which is how the Java onChange test once flaked.
    """
    with LineClient(srv.server.path) as client:
        _hello(client)
        for i in range(1, 11):
            group = f"g{i}"
            client.send({"id": i, "op": "watch", "group": group})

            def recorded(group: str = group) -> bool:
                watches = srv.apply({"requests": {"op": "watch"}})["requests"]
                return any(w["group"] == group for w in watches)

            _wait_for(f"watch of {group} recorded", recorded)
            for seq in (1, 2):
                srv.apply(
                    {"publish": {**_release(seq), "group": group, "release": f"{group}-{seq}"}}
                )
            assert client.recv() == {"id": i, "ok": True, "group": group}
            got = [client.recv()["release"] for _ in range(2)]  # 5 s deadline each
            assert got == [f"{group}-1", f"{group}-2"]


def test_requests_lists_what_clients_sent_in_order_and_by_op(srv: ServerThread) -> None:
    with LineClient(srv.server.path) as client:
        _hello(client)
        client.call({"id": 1, "op": "get", "group": "checkout"})
        client.call({"id": 2, "op": "report", "group": "checkout", "metric": "m", "value": 1.5})
    every = srv.apply({"requests": {}})["requests"]
    assert [r["op"] for r in every] == ["hello", "get", "report"]
    assert srv.apply({"requests": {"op": "report"}})["requests"] == [every[2]]
    assert every[2]["value"] == 1.5


def test_publish_notifies_and_set_stale_sends_status(srv: ServerThread) -> None:
    with LineClient(srv.server.path) as client:
        _hello(client)
        client.call({"id": 1, "op": "watch", "group": "checkout", "after": 3})
        srv.apply({"publish": _release(4)})
        event = client.recv()
        assert (event["event"], event["sequence"], event["config"]) == ("release", 4, CONFIG)
        srv.apply({"set_stale": {"group": "checkout", "stale": True}})
        assert client.recv() == {"event": "status", "watch": 1, "group": "checkout", "stale": True}
    with pytest.raises(ValueError, match="not above"):
        srv.apply({"publish": _release(4)})


def test_mute_reads_and_records_but_answers_nothing(srv: ServerThread) -> None:
    srv.apply({"mute": True})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.connect(str(srv.server.path))
        raw.sendall(b'{"id": 0, "op": "hello", "protocol": 1}\n')
        _wait_for("hello recorded", lambda: srv.apply({"requests": {}})["requests"])
        # Recorded means read; an answer would already be in the socket by now.
        raw.setblocking(False)
        with pytest.raises(BlockingIOError):
            raw.recv(1)
    assert srv.apply({"status": {}})["muted"] is True
    srv.apply({"mute": False})
    with LineClient(srv.server.path) as client:
        assert client.call({"id": 1, "op": "get", "group": "checkout"})["sequence"] == 3


def test_stop_drops_everyone_and_start_serves_the_kept_state(srv: ServerThread) -> None:
    path = srv.server.path
    with LineClient(path) as client:
        _hello(client)
        _wait_for("one connection", lambda: srv.apply({"status": {}})["connections"] == 1)
        srv.apply({"stop": {}})
        with pytest.raises(EOFError):
            client.recv()
    assert not path.exists()
    assert srv.apply({"status": {}}) == {"serving": False, "connections": 0, "muted": False}
    srv.apply({"publish": _release(4)})  # committed while the agent is down
    srv.apply({"start": {}})
    with LineClient(path) as client:
        assert client.call({"id": 1, "op": "get", "group": "checkout"})["sequence"] == 4
    assert [r["op"] for r in srv.apply({"requests": {}})["requests"]] == ["hello", "get"]


def test_load_replaces_state_and_forgets_requests_and_mute(srv: ServerThread) -> None:
    with LineClient(srv.server.path) as client:
        _hello(client)
    srv.apply({"mute": True})
    srv.apply({"load": {"groups": {"payments": {**_release(1), "group": "payments"}}}})
    assert srv.apply({"requests": {}}) == {"requests": []}
    with LineClient(srv.server.path) as client:
        assert client.call({"id": 1, "op": "get", "group": "checkout"})["ok"] is False
        assert client.call({"id": 2, "op": "get", "group": "payments"})["sequence"] == 1


@pytest.mark.parametrize("command", [{"nope": {}}, {"mute": 1}, {"stop": {}, "start": {}}, []])
def test_bad_commands_are_refused(srv: ServerThread, command: Any) -> None:
    with pytest.raises((ValueError, AttributeError)):
        srv.apply(command)


def test_process_starts_stopped_and_answers_control_errors(tmp_path: Path) -> None:
    sock, ctl = tmp_path / "agent.sock", tmp_path / "control.sock"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "konorkestra.testing.fakeagent", "--socket", str(sock)),
            *("--control", str(ctl), "--stopped", "--exit-with-stdin"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == f"ready {sock}"
        assert not sock.exists()
        with LineClient(ctl) as control:
            assert control.call({"status": {}}) == {
                "ok": True,
                "serving": False,
                "connections": 0,
                "muted": False,
            }
            refused = control.call({"publish": {"group": "checkout"}})
            assert refused["ok"] is False and "release" in refused["error"]
            assert control.call({"start": {}}) == {"ok": True}
            assert sock.exists()
        assert proc.stdin is not None
        proc.stdin.close()  # the test that started it is gone
        assert proc.wait(10) == 0
        assert not sock.exists() and not ctl.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
