"""``konorkestra.sdnotify`` against a real AF_UNIX datagram socket, as systemd binds one."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from konorkestra import sdnotify


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket on a path, and the ``$NOTIFY_SOCKET`` value naming it."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        yield sock, str(path)


def test_ready_reaches_a_path_socket(listener: tuple[socket.socket, str]) -> None:
    sock, value = listener
    assert sdnotify.notify(sdnotify.READY, "STATUS=serving", environ={"NOTIFY_SOCKET": value})
    lines = sock.recv(4096).decode().split("\n")
    assert lines == ["READY=1", "STATUS=serving", f"MAINPID={os.getpid()}"]


def test_ready_reaches_an_abstract_socket() -> None:
    name = f"konorkestra-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        assert sdnotify.notify(sdnotify.STOPPING, environ={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096).decode().split("\n")[0] == "STOPPING=1"


def test_without_notify_socket_nothing_is_sent() -> None:
    assert sdnotify.notify(sdnotify.READY, environ={}) is False
    assert sdnotify.notify(sdnotify.READY, environ={"NOTIFY_SOCKET": ""}) is False
    assert sdnotify.notify(sdnotify.READY, environ={"NOTIFY_SOCKET": "vsock:2:1"}) is False


def test_a_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(gone))
    gone.unlink()
    assert sdnotify.notify(sdnotify.READY, environ={"NOTIFY_SOCKET": str(gone)}) is False


def test_process_environment_is_the_default(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, value = listener
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    assert sdnotify.notify(sdnotify.READY)
    assert sock.recv(4096).startswith(b"READY=1\n")
