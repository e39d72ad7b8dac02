"""A minimal blocking protocol client for tests and benchmarks (no SDK logic).

Example::

    with LineClient("/tmp/k.sock") as client:
        client.call({"id": 1, "op": "hello", "protocol": 1})   # -> {"id": 1, "ok": True, ...}
        client.send({"id": 2, "op": "watch", "group": "checkout"})
        client.recv()                                           # the watch's answer

Every read has a deadline (``timeout``), so a hang fails a test instead of stalling it.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from konorkestra.agent.udswire import encode


class LineClient:
    """One connection speaking newline-delimited JSON."""

    def __init__(self, path: str | Path, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # A blocking connect waits while the listen backlog is full (a socket with
        # a timeout gets EAGAIN instead); after that, every read has a deadline.
        self.sock.connect(str(path))
        self.sock.settimeout(timeout)
        self._reader = self.sock.makefile("rb")

    def send(self, request: Mapping[str, Any]) -> None:
        self.sock.sendall(encode(request).encode() + b"\n")

    def recv(self) -> dict[str, Any]:
        """The next line as JSON; ``EOFError`` when the server closed the connection."""
        line = self._reader.readline()
        if not line:
            raise EOFError("connection closed")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Send ``request`` and return the next line (no events may be pending)."""
        self.send(request)
        return self.recv()

    def close(self) -> None:
        self._reader.close()
        self.sock.close()

    def __enter__(self) -> LineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
