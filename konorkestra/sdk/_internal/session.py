"""One connection to the agent, kept alive by one background thread.

Invariants:

* Exactly one thread (``konorkestra-sdk``) connects, reads and reconnects;
  any thread may :meth:`Session.send` (writes are serialised by a lock). The
  reader never waits for that lock, so it keeps draining the agent's output
  even while a writer is blocked, and the agent never stops reading from us.
* Each successful connection gets a new *generation* number. A send names the
  generation it was meant for and fails with :class:`UnavailableError` if that
  connection is gone, so nothing meant for an old connection leaks onto a new one.
* A reply callback registered by :meth:`Session.send` is called on the reader
  thread exactly once: with the reply, or not at all if the connection drops
  first. Callbacks must not block.
* After a drop the thread waits a jittered, exponentially growing delay
  (``min_delay`` doubling to at most ``max_delay``, each scaled by a random
  factor in [0.5, 1]) before the next attempt; a success resets it. ``close()``
  interrupts any wait at once.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import random
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from konorkestra import __version__
from konorkestra.sdk._internal.errors import UnavailableError

log = logging.getLogger("konorkestra.sdk")

Reply = Callable[[dict[str, Any]], None]


class Session:
    """The SDK side of the UDS protocol: framing, ids, reconnects."""

    def __init__(
        self,
        path: Path,
        *,
        name: str | None,
        on_connected: Callable[[int], None],
        on_event: Callable[[dict[str, Any]], None],
        on_disconnected: Callable[[], None],
        min_delay: float = 0.05,
        max_delay: float = 2.0,
    ) -> None:
        self.path = path
        self._hello = {
            "op": "hello",
            "protocol": 1,
            "client": {"name": name or "", "lang": "python", "version": __version__},
        }
        self._on_connected = on_connected
        self._on_event = on_event
        self._on_disconnected = on_disconnected
        self._min_delay, self._max_delay = min_delay, max_delay
        self._ids = itertools.count(1)
        self._write = threading.Lock()  # one writer at a time; guards _sock and _gen
        self._pending = threading.Lock()  # guards _replies
        self._sock: socket.socket | None = None
        self._gen = 0
        self._replies: dict[int, Reply | None] = {}
        self._closing = threading.Event()
        self.first_attempt = threading.Event()
        """Set once the first connection attempt succeeded (and was announced) or failed."""
        self._thread = threading.Thread(target=self._run, name="konorkestra-sdk", daemon=True)

    @property
    def generation(self) -> int | None:
        """The live connection's generation, or ``None`` while disconnected."""
        with self._write:
            return self._gen if self._sock is not None else None

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        with self._write:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked reader
        if threading.current_thread() is not self._thread:
            self._thread.join(10)

    def send(self, request: Mapping[str, Any], gen: int, on_reply: Reply | None = None) -> None:
        """Send ``request`` (an ``id`` is added) on connection ``gen``."""
        with self._write:
            if self._sock is None or self._gen != gen:
                raise UnavailableError("not connected to the agent")
            rid = next(self._ids)
            if on_reply is not None:
                with self._pending:
                    self._replies[rid] = on_reply
            line = json.dumps({**request, "id": rid}, separators=(",", ":")).encode() + b"\n"
            try:
                self._sock.sendall(line)
            except OSError as exc:
                with self._pending:
                    self._replies.pop(rid, None)
                raise UnavailableError(f"agent connection lost: {exc}") from exc

    # -- the background thread ------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._closing.is_set():
            sock = self._connect()
            if sock is None:
                self.first_attempt.set()
                failures += 1
                base = min(self._max_delay, self._min_delay * 2 ** min(failures - 1, 16))
                self._closing.wait(base * random.uniform(0.5, 1.0))
                continue
            failures = 0
            try:
                self._serve(sock)
            finally:
                with self._write, self._pending:
                    self._sock = None
                    self._replies.clear()
                sock.close()
                self._on_disconnected()
            if not self._closing.is_set():
                log.warning("lost the agent at %s; reconnecting", self.path)

    def _connect(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(5.0)
            sock.connect(str(self.path))
            sock.settimeout(None)
        except OSError as exc:
            sock.close()
            log.debug("agent not reachable at %s: %s", self.path, exc)
            return None
        with self._write:
            if self._closing.is_set():
                sock.close()
                return None
            self._gen += 1
            self._sock = sock
        return sock

    def _serve(self, sock: socket.socket) -> None:
        gen = self._gen
        try:
            self.send(self._hello, gen, self._check_hello)
            self._on_connected(gen)
        except UnavailableError:
            return
        finally:
            self.first_attempt.set()
        with sock.makefile("rb") as reader:
            try:
                for line in reader:
                    self._dispatch(line)
            except OSError as exc:
                log.debug("agent connection error: %s", exc)

    def _dispatch(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            log.warning("agent sent a line that is not JSON: %r", line[:200])
            return
        if not isinstance(msg, dict):
            return
        try:
            if "event" in msg:
                self._on_event(msg)
                return
            rid = msg.get("id")
            with self._pending:  # never the write lock: the reader must not wait on writers
                handler = self._replies.pop(rid, None) if isinstance(rid, int) else None
            if handler is not None:
                handler(msg)
            elif msg.get("ok") is False:
                log.warning("agent refused a request: %s", msg.get("error"))
        except Exception:  # a malformed message must not kill the connection thread
            log.exception("cannot process agent message %r", line[:200])

    def _check_hello(self, reply: dict[str, Any]) -> None:
        if reply.get("ok") is not True:
            log.error("agent refused hello: %s", reply.get("error"))
