"""The SDK and the sample app across real process boundaries."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import konorkestra.sdk as sdk
from konorkestra.testing.serverthread import ServerThread

ROOT = Path(__file__).parents[2]
APP = ROOT / "examples" / "apps" / "checkout_app.py"


class Lines:
    """A child's stdout, read by a thread so each line can be awaited with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._q: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=lambda: [self._q.put(line) for line in stream], daemon=True).start()

    def next(self, timeout: float = 10.0) -> str:
        return self._q.get(timeout=timeout).rstrip("\n")


def _fakeagent(sock: Path, ctl: Path, state: dict[str, Any], tmp: Path) -> subprocess.Popen[str]:
    state_file = tmp / "state.json"
    state_file.write_text(json.dumps(state))
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "konorkestra.testing.fakeagent", "--socket", str(sock)),
            *("--state", str(state_file), "--control", str(ctl)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == f"ready {sock}"
    return proc


def _control(ctl: Path, step: dict[str, Any]) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(ctl))
        s.sendall(json.dumps(step).encode() + b"\n")
        assert json.loads(s.makefile("rb").readline()) == {"ok": True}


def _release(seq: int, timeout_ms: int) -> dict[str, Any]:
    return {
        "group": "checkout",
        "release": f"checkout-{seq}",
        "sequence": seq,
        "config": {"checkout-api": {"timeoutMs": timeout_ms}},
    }


def test_sdk_against_agent_process_killed_and_restarted(
    tmp_path: Path, recorder: Any, wait_until: Callable[..., None]
) -> None:
    sock, ctl = tmp_path / "agent.sock", tmp_path / "ctl.sock"
    server = _fakeagent(sock, ctl, {"groups": {"checkout": _release(1, 800)}}, tmp_path)
    try:
        with sdk.connect(sock) as client:
            assert client.get_config("checkout")["checkout-api"]["timeoutMs"] == 800
            rec = recorder()
            client.watch("checkout", rec)
            for seq in (2, 3, 4):
                _control(ctl, {"publish": _release(seq, 800 + seq)})
            rec.wait_for(3)
            server.send_signal(signal.SIGKILL)  # no goodbye: the socket file stays behind
            server.wait(10)
            wait_until(lambda: not client.connected)
            assert client.get_config("checkout").sequence == 4  # keeps serving its snapshot
            server = _fakeagent(sock, ctl, {"groups": {"checkout": _release(6, 1)}}, tmp_path)
            rec.wait_for(4)
            _control(ctl, {"publish": _release(7, 2)})
            rec.wait_for(5)
            assert rec.calls == [(2, 1), (3, 2), (4, 3), (6, 4), (7, 6)]
    finally:
        server.kill()
        server.wait(10)


@pytest.fixture
def app(agent: ServerThread) -> Iterator[tuple[subprocess.Popen[str], Lines]]:
    proc = subprocess.Popen(
        [sys.executable, str(APP), "--socket", str(agent.server.path), "--name", "demo-app"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield proc, Lines(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_sample_app_prints_applies_and_rejects(
    agent: ServerThread,
    app: tuple[subprocess.Popen[str], Lines],
    publish: Callable[..., None],
    acks: Callable[..., list[Any]],
    wait_until: Callable[..., None],
) -> None:
    proc, lines = app
    assert lines.next().startswith("start   release=checkout-1 sequence=1 source=agent config=")
    publish(agent, 2, {"checkout-api": {"timeoutMs": 900, "simulatedErrorRate": 0.25}})
    assert lines.next().startswith("applied release=checkout-2 sequence=2")
    publish(agent, 3, {"checkout-api": {"timeoutMs": 950, "failBadReload": True}})
    assert lines.next() == (
        'failed  release=checkout-3 error="BadReload: failBadReload is set" keeping=checkout-2'
    )
    wait_until(lambda: len(acks(agent)) == 3)
    assert acks(agent)[2] == ("checkout-3", "failed", "BadReload: failBadReload is set")
    views = agent.call(agent.server.visibility.snapshot)
    (view,) = [v for v in views if v.peer.pid == proc.pid]
    assert (view.client, view.ack_status, view.release) == ("demo-app", "failed", "checkout-3")
    events = agent.call(lambda: list(agent.server.visibility._events))
    assert ("error_rate", 0.25) in [(e.metric, e.value) for e in events if e.kind == "report"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
