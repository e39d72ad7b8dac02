"""Serve an in-memory state over the real UDS server, for SDK conformance tests.

Example (shell; the Go and Java SDK suites do this)::

    python -m konorkestra.agent.vectorserver --socket /tmp/k.sock \\
        --state tests/vectors/watch_after.json --control /tmp/k.ctl
    # prints "ready /tmp/k.sock" once both sockets accept connections
    echo '{"publish": {"group": "checkout", "release": "checkout-4", "sequence": 4,
           "config": {"checkout-api": {"timeoutMs": 900}}}}' | socat - UNIX:/tmp/k.ctl
    # -> {"ok": true}

Example (Python tests)::

    with ServerThread(InMemoryState.from_json(doc), sock_path) as srv:
        srv.apply({"publish": {"group": "checkout", "release": "checkout-4", ...}})

``--state`` takes a conformance vector (its ``state`` and ``server`` members are
used) or a bare state document ``{"groups": {...}}``. Control commands are the
vector step objects ``{"publish": ...}`` and ``{"set_stale": ...}`` plus
``{"load": <vector or state document>}``, one JSON object per line, each
answered with ``{"ok": true}`` or ``{"ok": false, "error": "..."}``.

Invariants: :class:`InMemoryState` refuses a release whose sequence is not above
the group's current one (as the real store does); every state change is applied
on the server's event loop, then its watchers are notified.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from konorkestra.agent.uds import UdsServer, encode
from konorkestra.model.canonical import digest_value


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A committed release held in memory (satisfies ``uds.ReleaseSnapshot``)."""

    release_id: str
    sequence: int
    digest: str
    config: Mapping[str, Any] = field(default_factory=dict)


class InMemoryState:
    """A :class:`~konorkestra.agent.uds.StateSource` backed by dicts; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[str, Snapshot] = {}
        self._stale: dict[str, bool] = {}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> InMemoryState:
        """Build from ``{"groups": {g: {release, sequence, digest?, stale?, config}}}``."""
        state = cls()
        for group, body in doc.get("groups", {}).items():
            state.put_json(group, body)
        return state

    def current(self, group: str) -> Snapshot | None:
        return self._current.get(group)

    def stale(self, group: str) -> bool:
        return self._stale.get(group, False)

    def put(
        self,
        group: str,
        *,
        release_id: str,
        sequence: int,
        config: Mapping[str, Any],
        digest: str | None = None,
    ) -> Snapshot:
        """Commit a release; ``digest`` defaults to the digest of ``config``."""
        snap = Snapshot(release_id, sequence, digest or digest_value(dict(config)), config)
        with self._lock:
            old = self._current.get(group)
            if old is not None and sequence <= old.sequence:
                raise ValueError(
                    f"sequence {sequence} of {group!r} is not above current {old.sequence}"
                )
            self._current[group] = snap
        return snap

    def put_json(self, group: str, body: Mapping[str, Any]) -> Snapshot:
        """:meth:`put` from the vector form ``{release, sequence, digest?, stale?, config}``."""
        snap = self.put(
            group,
            release_id=body["release"],
            sequence=body["sequence"],
            config=body.get("config", {}),
            digest=body.get("digest"),
        )
        if "stale" in body:
            self.set_stale(group, bool(body["stale"]))
        return snap

    def set_stale(self, group: str, flag: bool) -> None:
        with self._lock:
            self._stale[group] = flag

    def clear(self) -> None:
        with self._lock:
            self._current.clear()
            self._stale.clear()


def state_part(doc: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """Split a vector (``state`` + ``server``) or a bare state document."""
    if "steps" in doc or "state" in doc:
        return doc.get("state", {}), doc.get("server", {})
    return doc, {}


def apply_step(server: UdsServer, state: InMemoryState, step: Mapping[str, Any]) -> None:
    """Apply one ``publish`` / ``set_stale`` / ``load`` command. Loop thread only."""
    if "publish" in step:
        body = step["publish"]
        state.put_json(body["group"], body)
        server.publish(body["group"])
    elif "set_stale" in step:
        body = step["set_stale"]
        state.set_stale(body["group"], bool(body["stale"]))
        server.set_stale(body["group"], bool(body["stale"]))
    elif "load" in step:
        groups, options = state_part(step["load"])
        state.clear()
        for group, body in groups.get("groups", {}).items():
            state.put_json(group, body)
        uids = options.get("allow_uids")
        server.allow_uids = None if uids is None else frozenset(uids)
    else:
        raise ValueError(f"unknown command {sorted(step)}")


class ServerThread:
    """A :class:`UdsServer` on its own event loop in a daemon thread."""

    def __init__(self, state: InMemoryState, path: str | Path, **options: Any) -> None:
        self.state = state
        self.server = UdsServer(state, path, **options)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="uds-server", daemon=True)
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._stop: asyncio.Event | None = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Start serving; returns once the socket accepts connections."""
        self._thread.start()
        self._ready.result(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close the server (removing its socket) and end the thread."""
        if self._thread.is_alive() and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)

    def apply(self, step: Mapping[str, Any], timeout: float = 10.0) -> None:
        """Run :func:`apply_step` on the server's loop and wait for it."""
        self.call(lambda: apply_step(self.server, self.state, step), timeout)

    def call(self, fn: Any, timeout: float = 10.0) -> Any:
        """Run ``fn()`` on the server's loop and return its result."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        await self.server.start()
        self._ready.set_result(None)
        try:
            await self._stop.wait()
        finally:
            await self.server.close()


class LineClient:
    """A minimal blocking protocol client for tests and benchmarks (no SDK logic)."""

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


async def _control(server: UdsServer, state: InMemoryState, path: Path) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            try:
                apply_step(server, state, json.loads(line))
                reply: dict[str, object] = {"ok": True}
            except Exception as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            writer.write(encode(reply).encode() + b"\n")
            await writer.drain()
        writer.close()

    path.unlink(missing_ok=True)
    return await asyncio.start_unix_server(handle, str(path), limit=16 * 1024 * 1024)


async def _main(args: argparse.Namespace) -> None:
    doc = json.loads(Path(args.state).read_text()) if args.state else {}
    groups, options = state_part(doc)
    state = InMemoryState.from_json(groups)
    server = UdsServer(state, args.socket, node=args.node, allow_uids=options.get("allow_uids"))
    await server.start()
    control = await _control(server, state, Path(args.control)) if args.control else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready {args.socket}", flush=True)
    try:
        await stop.wait()
    finally:
        if control is not None:
            control.close()
            Path(args.control).unlink(missing_ok=True)
        await server.close()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m konorkestra.agent.vectorserver")
    parser.add_argument("--socket", required=True, help="UDS path to serve")
    parser.add_argument("--state", help="vector or state JSON file to serve")
    parser.add_argument("--control", help="UDS path accepting publish/set_stale/load lines")
    parser.add_argument("--node", default="vector-node", help="node name reported by hello")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
