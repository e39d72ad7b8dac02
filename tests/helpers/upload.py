"""Big streamed uploads against a real Center, and the Center's resident memory.

Example::

    with PeakRss(center.proc.pid) as rss:
        result = upload(f"{center.url}/v1/enroll", total=300 << 20, declare_length=False,
                        verify=center.verify)
    assert rss.growth < 10 << 20 and result.sent < 64 << 20

The body comes from a generator (``httpx`` streams it chunk by chunk, chunked
transfer encoding unless ``declare_length``), so the client never holds it. The
server is expected to answer early and close; the client then sees a write or
read error instead of a response, and ``sent`` says how far it got.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class Upload:
    """What one upload did: the status if one was read, and the bytes handed to the socket."""

    status: int | None
    sent: int
    error: str | None


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for pid {pid}")


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` now (``VmRSS`` in ``/proc/<pid>/status``)."""
    return _status_kib(pid, "VmRSS")


class PeakRss:
    """The highest RSS of ``pid`` inside a ``with`` block.

    Memory freed after a request goes back to the system, so RSS *after* an upload
    says little; the peak is what takes a host down. The kernel's high-water mark
    ``VmHWM`` is reset on entry (``5`` into ``/proc/<pid>/clear_refs``) and read
    on exit; where that reset is not allowed, RSS is sampled every 5 ms instead.
    """

    def __init__(self, pid: int) -> None:
        self.pid, self.before, self.peak = pid, 0, 0
        self._hwm = False
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __enter__(self) -> PeakRss:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self._hwm = True
        except OSError:
            self._sampler.start()
        self.before = self.peak = rss_bytes(self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._hwm:
            self.peak = max(self.peak, _status_kib(self.pid, "VmHWM"))
        else:
            self._stop.set()
            self._sampler.join()
        self.peak = max(self.peak, rss_bytes(self.pid))

    @property
    def growth(self) -> int:
        """Peak minus the RSS on entry, in bytes."""
        return self.peak - self.before


def client(verify: ssl.SSLContext | bool, source: str = "127.0.0.1") -> httpx.Client:
    """An httpx client whose connections come from ``source`` (any 127.x.y.z on Linux).

    Distinct sources get distinct buckets in the Center's enrollment rate limiter.
    """
    transport = httpx.HTTPTransport(verify=verify, local_address=source)
    return httpx.Client(transport=transport, timeout=60)


def upload(
    url: str,
    *,
    total: int,
    declare_length: bool,
    verify: ssl.SSLContext | bool,
    chunk: int = 1 << 16,
    source: str = "127.0.0.1",
) -> Upload:
    """POST ``total`` bytes of ``{"x": "aaaa…`` to ``url``, streamed from a generator."""
    sent = 0
    block = b"a" * chunk

    def body() -> Iterator[bytes]:
        nonlocal sent
        first = b'{"x": "'
        sent += len(first)
        yield first
        while sent < total:
            piece = block[: min(chunk, total - sent)]
            sent += len(piece)
            yield piece

    headers = {"Content-Type": "application/json"}
    if declare_length:
        headers["Content-Length"] = str(total)
    with client(verify, source) as http:
        try:
            resp = http.post(url, content=body(), headers=headers)
        except httpx.HTTPError as exc:
            return Upload(None, sent, f"{type(exc).__name__}: {exc}")
    return Upload(resp.status_code, sent, None)
