"""Lean parked clients for ``bench/fanout.py``: many TLS connections in one asyncio loop.

Each connection is one :class:`Conn`: TLS through :class:`ssl.MemoryBIO` (not
asyncio's ``SSLProtocol``, which keeps a zero-filled 256 KiB read buffer per
connection) and HTTP/1.1 parsed by hand (``Content-Length`` and chunked bodies).
Three kinds of client sit on it:

* :class:`PollClient` — the agent's long-poll: ``GET /v1/agent/desired?have=<group>:<seq>
  &wait=55.0`` with the agent's httpx headers, sent again on the same keep-alive
  connection as soon as it is answered (with the new ``have`` when the answer
  offers a newer Release), as :class:`konorkestra.agent.sync` does.
* :class:`StreamClient` — ``GET /v1/agent/stream?have=...``: one request, then
  newline-delimited JSON frames (an empty line is a heartbeat).
* :class:`EtcdWatcher` — etcd's HTTP/JSON gateway, ``POST /v3/watch`` on one key;
  the stream's JSON lines carry the put values (the publish number).

Invariants:

* An arrival is stamped with ``time.monotonic()`` when the bytes that complete
  the message are received, before the message is decoded; CLOCK_MONOTONIC is
  one clock for every process on the host, so the parent's ``t0`` compares.
* :class:`Tracker` keeps, per client, the first time it saw each newer sequence;
  "client i has publish T" means the first arrival with a sequence >= T.
* A refused request (HTTP status other than 200) or a TLS error is an error of
  the run, never a silent retry; a connection the server closes is reopened
  (what the agent's client does) and counted in :attr:`Tracker.reconnects`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from dataclasses import dataclass, field

HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, TRAILER = range(5)
AGENT_HEADERS = (
    "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
    "User-Agent: python-httpx/0.29.0\r\n"
)  # what the agent's httpx client sends (httpx 0.29)
POLL_WAIT = "55.0"  # the agent's default poll_wait, formatted as centerclient.desired does


@dataclass
class Tracker:
    """Per client: ``(sequence, monotonic arrival)`` of every newer sequence it saw."""

    n: int
    seen: list[list[tuple[int, float]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reconnects: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.seen = [[] for _ in range(self.n)]

    def latest(self, i: int) -> int:
        return self.seen[i][-1][0] if self.seen[i] else -1

    def arrived(self, i: int, seq: int, at: float) -> None:
        if seq > self.latest(i):
            self.seen[i].append((seq, at))
            self.changed.set()

    def error(self, text: str) -> None:
        self.errors.append(text)
        self.changed.set()

    def count_at(self, target: int) -> int:
        return sum(1 for i in range(self.n) if self.latest(i) >= target)

    def arrivals(self, target: int) -> list[float]:
        """First arrival with a sequence >= ``target``, per client that has one."""
        out = []
        for events in self.seen:
            hit = next((at for seq, at in events if seq >= target), None)
            if hit is not None:
                out.append(hit)
        return out

    async def wait_all(self, target: int, timeout: float) -> bool:
        """Until every client has ``target`` (True), an error or the deadline (False)."""
        deadline = time.monotonic() + timeout
        while self.count_at(target) < self.n and not self.errors:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return False
        return not self.errors


@dataclass(frozen=True)
class Endpoint:
    """Where a client connects: ``host:port`` from ``source`` (a loopback address)."""

    host: str
    port: int
    source: str
    tls: ssl.SSLContext | None


class Conn(asyncio.Protocol):
    """One connection: optional TLS over memory BIOs, then HTTP/1.1 responses parsed by hand."""

    def __init__(self, endpoint: Endpoint, index: int, tracker: Tracker) -> None:
        self.endpoint, self.index, self.tracker = endpoint, index, tracker
        self.transport: asyncio.Transport | None = None
        self.tls: ssl.SSLObject | None = None
        self._in = self._out = ssl.MemoryBIO()
        self.ready = False
        self.closing = False
        self.first = asyncio.get_running_loop().create_future()  # set by a subclass
        self._buf = bytearray()
        self._lines = bytearray()
        self._state, self._left, self._status = HEAD, 0, 0

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        await loop.create_connection(lambda: self, ep.host, ep.port, local_addr=(ep.source, 0))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._buf.clear()
        self._lines.clear()
        self._state = HEAD
        if self.endpoint.tls is None:
            self.ready = True
            self.opened()
            return
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = self.endpoint.tls.wrap_bio(
            self._in, self._out, server_hostname=self.endpoint.host
        )
        self.ready = False
        self._handshake()

    def _handshake(self) -> None:
        assert self.tls is not None
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        self.ready = True
        self._flush()
        self.opened()

    def data_received(self, data: bytes) -> None:
        at = time.monotonic()
        if self.tls is None:
            self._feed(data, at)
            return
        self._in.write(data)
        try:
            if not self.ready:
                self._handshake()
                if not self.ready:
                    return
            while True:
                try:
                    plain = self.tls.read(65536)
                except ssl.SSLWantReadError:
                    break
                if not plain:
                    break
                self._feed(plain, at)
        except ssl.SSLError as exc:
            self.fail(f"TLS: {exc}")
        self._flush()

    def _flush(self) -> None:
        pending = self._out.read()
        if pending and self.transport is not None:
            self.transport.write(pending)

    def send(self, data: bytes) -> None:
        if self.tls is None:
            assert self.transport is not None
            self.transport.write(data)
            return
        self.tls.write(data)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.closing:
            return
        if not self.first.done():
            self.fail(f"connection closed before the first answer ({exc or 'EOF'})")
            return
        self.tracker.reconnects += 1
        asyncio.get_running_loop().create_task(self._reopen())

    async def _reopen(self) -> None:
        try:
            await self.open()
        except OSError as exc:
            self.fail(f"reconnect: {exc}")

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def fail(self, text: str) -> None:
        self.tracker.error(f"client {self.index}: {text}")
        if not self.first.done():
            self.first.set_exception(RuntimeError(text))
        self.close()

    # -- HTTP/1.1 responses --------------------------------------------------------------

    def _feed(self, data: bytes, at: float) -> None:
        buf = self._buf
        buf += data
        while True:
            if self._state == HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
                del buf[: end + 4]
                self._status = int(lines[0].split()[1])
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (x.partition(":") for x in lines[1:])}  # fmt: skip
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    self._state = CHUNK_SIZE
                else:
                    self._state, self._left = BODY, int(headers.get("content-length", "0"))
            elif self._state == BODY:
                if len(buf) < self._left:
                    return
                body = bytes(buf[: self._left])
                del buf[: self._left]
                self._state = HEAD
                self.body(self._status, body, at)
            elif self._state == CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";")[0], 16)
                del buf[: end + 2]
                self._state, self._left = (TRAILER, 0) if size == 0 else (CHUNK_DATA, size)
            elif self._state == CHUNK_DATA:
                if len(buf) < self._left + 2:
                    return
                self._lines += buf[: self._left]
                del buf[: self._left + 2]
                self._state = CHUNK_SIZE
                while (nl := self._lines.find(b"\n")) >= 0:
                    line = bytes(self._lines[:nl])
                    del self._lines[: nl + 1]
                    self.line(self._status, line, at)
            else:  # TRAILER: header lines until an empty one
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                del buf[: end + 2]
                if end == 0:
                    self._state = HEAD
                    self.ended(self._status)

    # -- what a kind of client does --------------------------------------------------------

    def opened(self) -> None:
        raise NotImplementedError

    def body(self, status: int, body: bytes, at: float) -> None:
        self.fail(f"unexpected HTTP body (status {status}): {body[:200]!r}")

    def line(self, status: int, line: bytes, at: float) -> None:
        self.fail(f"unexpected streamed line (status {status}): {line[:200]!r}")

    def ended(self, status: int) -> None:
        self.fail(f"the server ended the stream (HTTP {status})")


def _sequence_of(answer: bytes, group: str) -> int | None:
    """The sequence of ``group``'s Release a desired-state answer offers (None: none)."""
    doc = json.loads(answer)
    if "closed" in doc:
        raise ValueError(f"stream closed: {doc['closed']}")
    for rel in doc.get("releases", []):
        if rel.get("group") == group:
            return int(rel["sequence"])
    return None


class PollClient(Conn):
    """The agent's long-poll, re-requested on the same connection as soon as it is answered."""

    group = "checkout"
    path = "/v1/agent/desired"
    extra = f"&wait={POLL_WAIT}"  # httpx sends ``have=checkout%3A3&wait=55.0``

    def __init__(self, endpoint: Endpoint, index: int, tracker: Tracker) -> None:
        super().__init__(endpoint, index, tracker)
        self.have = 0

    def request(self) -> bytes:
        query = f"have={self.group}%3A{self.have}" + self.extra
        host = f"{self.endpoint.host}:{self.endpoint.port}"
        return f"GET {self.path}?{query} HTTP/1.1\r\nHost: {host}\r\n{AGENT_HEADERS}\r\n".encode()

    def opened(self) -> None:
        self.send(self.request())

    def offered(self, status: int, answer: bytes, at: float) -> None:
        if status != 200:
            self.fail(f"HTTP {status}: {answer[:300]!r}")
            return
        try:
            seq = _sequence_of(answer, self.group)
        except (ValueError, KeyError, TypeError) as exc:
            self.fail(f"bad answer: {exc}")
            return
        if seq is not None and seq > self.have:
            self.have = seq
            self.tracker.arrived(self.index, seq, at)
        if not self.first.done():
            self.first.set_result(None)

    def body(self, status: int, body: bytes, at: float) -> None:
        self.offered(status, body, at)
        if not self.closing:
            self.send(self.request())


class StreamClient(PollClient):
    """``GET /v1/agent/stream``: one request, then ndjson frames; ``have`` kept for reconnects."""

    path = "/v1/agent/stream"
    extra = ""

    def body(self, status: int, body: bytes, at: float) -> None:
        self.fail(f"the stream answered with a whole body: HTTP {status}: {body[:300]!r}")

    def line(self, status: int, line: bytes, at: float) -> None:
        if line.strip():  # an empty line is a heartbeat
            self.offered(status, line, at)

    def ended(self, status: int) -> None:
        """The stream's body ended (its max age): ask again, as the agent does."""
        self.tracker.reconnects += 1
        self.send(self.request())


class EtcdWatcher(Conn):
    """A watch on one key through etcd's gateway; the values put are publish numbers."""

    key = b"/bench/fanout"

    def opened(self) -> None:
        b64 = base64.b64encode(self.key).decode()
        body = json.dumps({"create_request": {"key": b64}}).encode()
        self.send(
            (f"POST /v3/watch HTTP/1.1\r\nHost: {self.endpoint.host}:{self.endpoint.port}\r\n"
             f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            + body
        )  # fmt: skip

    def line(self, status: int, line: bytes, at: float) -> None:
        if status != 200:
            self.fail(f"HTTP {status}: {line[:300]!r}")
            return
        if not line.strip():
            return
        try:
            result = json.loads(line)["result"]
            for event in result.get("events", []):
                self.tracker.arrived(self.index, int(base64.b64decode(event["kv"]["value"])), at)
        except (ValueError, KeyError, TypeError) as exc:
            self.fail(f"bad watch line {line[:200]!r}: {exc}")
            return
        if result.get("created") and not self.first.done():
            self.first.set_result(None)

    def body(self, status: int, body: bytes, at: float) -> None:
        self.fail(f"watch answered with a whole body: HTTP {status}: {body[:300]!r}")
