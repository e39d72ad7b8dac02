"""The agent's real UDS server, recording every request it answers (test tooling).

Example::

    server = RecordingServer(InMemoryState(), "/tmp/k.sock")
    await server.start()
    ...                                    # a client sends hello, watch, ack...
    [r["op"] for r in server.log.requests()]            # ['hello', 'watch', 'ack']
    server.log.muted = True                # read and record, answer nothing

Invariants:

* A request is recorded only after the server has handled it, so a test that
  sees a ``watch`` in the log knows the watch is registered: a release published
  from then on reaches it (the race of commit a738a2a cannot come back).
* While muted, connections are accepted and lines are recorded, never answered;
  watch events already registered are still sent (the agent is alive but slow).
* Over-long and blank lines are not recorded; lines are parsed only when read,
  so recording costs a copy of the bytes, and the log keeps at most
  ``max_requests`` lines (the oldest go first).
"""

from __future__ import annotations

import json
import os
from collections import deque
from typing import Any

from konorkestra.agent.uds import UdsServer
from konorkestra.agent.udsconn import Connection, ConnectionHost
from konorkestra.agent.udswire import MAX_LINE, StateSource


class RequestLog:
    """Request lines in arrival order, and whether the server answers them."""

    def __init__(self, max_requests: int = 100_000) -> None:
        self.muted = False
        self._lines: deque[bytes] = deque(maxlen=max_requests)

    def add(self, line: bytes) -> None:
        if line.strip():
            self._lines.append(line)

    def clear(self) -> None:
        self._lines.clear()

    def requests(self, op: str | None = None) -> list[dict[str, Any]]:
        """Recorded requests that are JSON objects, with ``op`` when given."""
        out: list[dict[str, Any]] = []
        for line in list(self._lines):
            try:
                req = json.loads(line)
            except ValueError:
                continue
            if isinstance(req, dict) and (op is None or req.get("op") == op):
                out.append(req)
        return out


class RecordingConnection(Connection):
    """A :class:`Connection` that logs each complete line once it has been handled."""

    def __init__(self, server: ConnectionHost) -> None:
        super().__init__(server)
        assert isinstance(server, RecordingServer)
        self._log = server.log
        self._pending = bytearray()
        self._skipping = False  # inside an over-long line

    def data_received(self, data: bytes) -> None:
        if not self._log.muted:
            super().data_received(data)  # handles every complete line, synchronously
        buf = self._pending
        buf += data
        start = 0
        while (nl := buf.find(b"\n", start)) >= 0:
            if not self._skipping and nl - start <= MAX_LINE:
                self._log.add(bytes(buf[start:nl]))
            self._skipping = False
            start = nl + 1
        del buf[:start]
        if len(buf) > MAX_LINE:
            buf.clear()
            self._skipping = True


class RecordingServer(UdsServer):
    """A :class:`UdsServer` whose connections record into :attr:`log`."""

    connection_class = RecordingConnection

    def __init__(
        self,
        source: StateSource,
        path: str | os.PathLike[str],
        *,
        max_requests: int = 100_000,
        **options: Any,
    ) -> None:
        super().__init__(source, path, **options)
        self.log = RequestLog(max_requests)
