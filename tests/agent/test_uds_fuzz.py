"""Fuzz the UDS server: whatever arrives, it answers with well-formed lines and survives."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from konorkestra.agent.udswire import MAX_LINE
from konorkestra.testing.lineclient import LineClient
from konorkestra.testing.memstate import InMemoryState
from konorkestra.testing.serverthread import ServerThread

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    state = InMemoryState()
    state.put("checkout", release_id="checkout-1", sequence=1, config={"a": {"b": [1, 2]}})
    path = tmp_path_factory.mktemp("fuzz") / "agent.sock"
    with ServerThread(state, path) as server:
        yield server


def _assert_alive(srv: ServerThread) -> None:
    """A fresh connection gets a correct answer to a well-formed get."""
    with LineClient(srv.server.path) as client:
        reply = client.call({"id": "alive", "op": "get", "group": "checkout"})
    assert reply["ok"] is True and reply["release"] == "checkout-1"


def _drain_until_probe(sock: socket.socket) -> list[dict[str, object]]:
    """Read lines until the probe's answer; every line must be a protocol object."""
    reader = sock.makefile("rb")
    seen = []
    while True:
        line = reader.readline()
        assert line.endswith(b"\n"), f"truncated or missing line: {line[:100]!r}"
        obj = json.loads(line)
        assert isinstance(obj, dict) and ("ok" in obj or "event" in obj), obj
        seen.append(obj)
        if obj.get("id") == "probe-fuzz":
            assert obj["ok"] is True
            return seen


def _send_then_probe(srv: ServerThread, payload: bytes) -> list[dict[str, object]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(srv.server.path))
    try:
        sock.sendall(payload + b'\n{"id":"probe-fuzz","op":"get","group":"checkout"}\n')
        return _drain_until_probe(sock)
    finally:
        sock.close()


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_get_errors_not_crashes(srv: ServerThread, payload: bytes) -> None:
    for reply in _send_then_probe(srv, payload):
        if reply.get("ok") is False:
            assert isinstance(reply["error"], dict)
            assert reply["error"]["code"] in {
                "bad_request",
                "unknown_op",
                "too_large",
                "not_found",
                "unsupported_protocol",
            }
    _assert_alive(srv)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_requests = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.integers(), st.text(max_size=8), _json_values),
        "op": st.sampled_from(["hello", "get", "watch", "unwatch", "ack", "report", "x"])
        | _json_values,
        "group": st.sampled_from(["checkout", ""]) | _json_values,
        "after": _json_values,
        "watch": _json_values,
        "protocol": _json_values,
        "status": st.sampled_from(["applied", "failed"]) | _json_values,
        "release": _json_values,
        "metric": _json_values,
        "value": _json_values,
        "client": _json_values,
        "error": _json_values,
    },
)


@FUZZ
@given(st.lists(_requests, max_size=8))
def test_structured_garbage_gets_one_answer_per_request(
    srv: ServerThread, requests: list[dict[str, object]]
) -> None:
    payload = b"".join(json.dumps(r).encode() + b"\n" for r in requests)
    replies = _send_then_probe(srv, payload)
    answers = [r for r in replies if "ok" in r]
    assert len(answers) == len(requests) + 1  # every request answered, in order
    _assert_alive(srv)


@FUZZ
@given(
    st.integers(min_value=MAX_LINE - 2, max_value=4 * MAX_LINE), st.binary(min_size=1, max_size=1)
)
def test_huge_lines_get_too_large(srv: ServerThread, size: int, fill: bytes) -> None:
    if fill == b"\n":
        fill = b"x"
    replies = _send_then_probe(srv, fill * size)
    codes = [r["error"]["code"] for r in replies if r.get("ok") is False]  # type: ignore[index]
    if size > MAX_LINE:
        assert codes == ["too_large"]
    _assert_alive(srv)


def test_half_open_and_abandoned_connections(srv: ServerThread) -> None:
    for payload in (b"", b'{"id":1,"op":"get","gro', b"x" * (MAX_LINE * 2), b'{"id":1}\n'):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(srv.server.path))
        sock.sendall(payload)
        sock.close()  # gone mid-request, without reading anything
        half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        half.settimeout(10)
        half.connect(str(srv.server.path))
        half.sendall(payload)
        half.shutdown(socket.SHUT_WR)
        while half.recv(65536):
            pass  # the server closes its side after answering
        half.close()
    _assert_alive(srv)


def test_many_concurrent_connections(srv: ServerThread) -> None:
    clients = [LineClient(srv.server.path, timeout=10) for _ in range(300)]
    try:
        for i, c in enumerate(clients):
            c.send({"id": i, "op": "watch", "group": "checkout"})
            c.send({"id": -i - 1, "op": "get", "group": "checkout"})
        for i, c in enumerate(clients):
            assert c.recv() == {"id": i, "ok": True, "group": "checkout"}
            assert c.recv()["event"] == "release"
            assert c.recv()["id"] == -i - 1
        assert srv.call(lambda: len(srv.server.connections)) >= 300
    finally:
        for c in clients:
            c.close()
    _assert_alive(srv)


STRICT = {
    "duplicate key": b'{"id": 1, "op": "ack", "group": "checkout", "op": "get"}',
    "deep nesting": b'{"id": 1, "op": "get", "x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
    "5000-digit int": b'{"id": ' + b"7" * 5000 + b', "op": "get", "group": "checkout"}',
    "NaN": b'{"id": 1, "op": "report", "group": "checkout", "metric": "m", "value": NaN}',
    "1e999": b'{"id": 1, "op": "report", "group": "checkout", "metric": "m", "value": 1e999}',
    "lone surrogate": b'{"id": 1, "op": "get", "group": "\\ud800"}',
}


@pytest.mark.parametrize("case", sorted(STRICT))
def test_strict_json_is_refused_as_bad_request(srv: ServerThread, case: str) -> None:
    """Each is a request the JSON stdlib would take (or crash on); the agent refuses it
    before reading any field, so the id is null, and the connection stays usable."""
    replies = _send_then_probe(srv, STRICT[case])
    assert replies[0]["id"] is None and replies[0]["ok"] is False, replies[0]
    error = replies[0]["error"]
    assert isinstance(error, dict) and error["code"] == "bad_request", error
    assert len(replies) == 2  # the refusal, then the probe's answer
    _assert_alive(srv)
