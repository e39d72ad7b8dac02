"""Replay every conformance vector against the real UDS server.

Once in-process (server on its own loop thread) and once against the fake
agent CLI (``konorkestra.testing.fakeagent``) as a separate process, driven
through its control socket exactly as the Go and Java SDK suites drive it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from konorkestra.testing.memstate import InMemoryState, state_part
from konorkestra.testing.serverthread import ServerThread

VECTORS = Path(__file__).parents[1] / "vectors"
_spec = importlib.util.spec_from_file_location("konorkestra_vector_replay", VECTORS / "replay.py")
assert _spec is not None and _spec.loader is not None
replay_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(replay_mod)

ALL = list(replay_mod.load_vectors(VECTORS))


def _connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5.0)  # a deadline: a hang fails the test instead of stalling it
    sock.connect(str(path))
    return sock


def test_vector_set_covers_every_error_code() -> None:
    codes = set()
    for vector in ALL:
        for step in vector["steps"]:
            error = step.get("expect", {}).get("error")
            if isinstance(error, dict):
                codes.add(error["code"])
    assert {
        "bad_request",
        "too_large",
        "unknown_op",
        "unsupported_protocol",
        "not_found",
        "forbidden",
    } <= codes


@pytest.mark.parametrize("vector", ALL, ids=[v["name"] for v in ALL])
def test_vector_in_process(vector: dict[str, Any], tmp_path: Path) -> None:
    groups, options = state_part(vector)
    path = tmp_path / "agent.sock"
    with ServerThread(InMemoryState.from_json(groups), path, **options) as srv:
        sock = _connect(path)
        reader = sock.makefile("rb")
        try:
            replay_mod.replay(
                vector, send=sock.sendall, read_line=reader.readline, control=srv.apply
            )
        finally:
            reader.close()
            sock.close()


@pytest.fixture(scope="module")
def fakeagent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    base = tmp_path_factory.mktemp("vs")
    sock, ctl = base / "agent.sock", base / "control.sock"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "konorkestra.testing.fakeagent"),
            *("--socket", str(sock), "--control", str(ctl)),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"ready {sock}"
        yield sock, ctl
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert not sock.exists(), "the server removes its socket on SIGTERM"


@pytest.mark.parametrize("vector", ALL, ids=[v["name"] for v in ALL])
def test_vector_against_fakeagent_process(
    vector: dict[str, Any], fakeagent: tuple[Path, Path]
) -> None:
    sock_path, ctl_path = fakeagent
    ctl = _connect(ctl_path)
    ctl_reader = ctl.makefile("rb")

    def control(step: dict[str, Any]) -> None:
        ctl.sendall(json.dumps(step).encode() + b"\n")
        reply = json.loads(ctl_reader.readline())
        assert reply == {"ok": True}, reply

    try:
        control({"load": vector})
        sock = _connect(sock_path)
        reader = sock.makefile("rb")
        try:
            replay_mod.replay(vector, send=sock.sendall, read_line=reader.readline, control=control)
        finally:
            reader.close()
            sock.close()
    finally:
        ctl_reader.close()
        ctl.close()


def test_replayer_rejects_a_wrong_response() -> None:
    """The harness itself can fail: a mismatching line raises."""
    vector = {"name": "neg", "steps": [{"expect": {"id": 1, "ok": True}}]}
    with pytest.raises(AssertionError, match=r"\$\.ok"):
        replay_mod.replay(
            vector,
            send=lambda b: None,
            read_line=lambda: b'{"id":1,"ok":false}\n',
            control=lambda s: None,
        )
    assert replay_mod.mismatch({"a": "$absent"}, {"a": 1}) is not None
    assert replay_mod.mismatch(1, True) is not None
    assert replay_mod.mismatch([1], [1, 2]) is not None
    assert replay_mod.mismatch({"x": 1.0}, {"x": 1, "y": 2}) is None
