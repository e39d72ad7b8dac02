"""The one fake agent of the SDK suites: the real UDS server over in-memory state.

The Python, Go and Java SDK tests and the conformance vectors (``tests/vectors``)
all run against this: the agent's own :class:`~konorkestra.agent.uds.UdsServer`
(so every answer is the product's), serving an :class:`InMemoryState` instead
of the agent's store, recording every request, and driven by a test through a
small control protocol. It is test tooling; nothing in the product imports it.

Control protocol: one JSON object per line on the ``--control`` Unix socket,
each answered in order by one line, ``{"ok": true, ...}`` once the command has
taken effect (watchers notified, connections dropped), or
``{"ok": false, "error": "..."}``. Each object has one member:

=========================================  =============================================
``{"publish": {group, release, sequence,   commit the release (``digest`` defaults to the
config, digest?, stale?}}``                digest of ``config``; the sequence must grow)
                                           and notify the group's watchers
``{"set_stale": {group, stale}}``          set the stale flag, notify watchers
``{"load": VECTOR or {"groups": ...}}``    replace the state and ``server`` options; forget
                                           recorded requests; unmute
``{"requests": {"op": "ack"}}``            answer ``"requests": [...]``: requests received
                                           (``op`` optional: all), oldest first
``{"stop": {}}``                           the agent dies: listener closed, every connection
                                           dropped, socket removed; state and log are kept
``{"start": {}}``                          serve again on the same socket
``{"mute": true}`` / ``{"mute": false}``   read and record requests but answer none
``{"status": {}}``                         answer ``"serving"``, ``"connections"``, ``"muted"``
=========================================  =============================================

Invariants:

* A request is listed by ``requests`` only once the server has handled it: a
  test that saw a ``watch`` knows the watch is registered, so a ``publish``
  sent after that reaches it.
* Commands run one at a time on the server's event loop, so a command's answer
  orders it against every request and event on the protocol socket.
* The state outlives ``stop``/``start``, like the agent's store a restart.

Example (shell; the Go and Java suites do this through a thin helper)::

    python -m konorkestra.testing.fakeagent --socket /tmp/k.sock --control /tmp/k.ctl \\
        --state tests/vectors/watch_after.json
    # prints "ready /tmp/k.sock" once both sockets accept connections
    echo '{"publish": {"group": "checkout", "release": "checkout-4", "sequence": 4,
           "config": {"checkout-api": {"timeoutMs": 900}}}}' | socat - UNIX:/tmp/k.ctl
    # -> {"ok":true}

Example (Python tests; :class:`~konorkestra.testing.serverthread.ServerThread`)::

    with ServerThread(InMemoryState.from_json(doc), sock_path) as srv:
        srv.apply({"publish": {"group": "checkout", "release": "checkout-4", ...}})
        srv.apply({"requests": {"op": "watch"}})        # -> {"requests": [...]}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from konorkestra.agent.udswire import encode
from konorkestra.testing.memstate import InMemoryState, state_part
from konorkestra.testing.recording import RecordingServer


class FakeAgent:
    """A :class:`RecordingServer` over an :class:`InMemoryState`; its loop only."""

    def __init__(self, state: InMemoryState, path: str | os.PathLike[str], **options: Any):
        self.state = state
        self.server = RecordingServer(state, path, **options)
        self.serving = False

    async def start(self) -> None:
        if not self.serving:
            await self.server.start()
            self.serving = True

    async def stop(self) -> None:
        if self.serving:
            self.serving = False
            await self.server.close()

    async def command(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        """Run one control command; return the members its answer adds to ``ok``."""
        if not isinstance(cmd, Mapping) or len(cmd) != 1:
            raise ValueError("a command is an object with exactly one member")
        ((name, arg),) = cmd.items()
        server, state = self.server, self.state
        if name == "publish":
            state.put_json(arg["group"], arg)
            server.publish(arg["group"])
        elif name == "set_stale":
            state.set_stale(arg["group"], bool(arg["stale"]))
            server.set_stale(arg["group"], bool(arg["stale"]))
        elif name == "load":
            groups, options = state_part(arg)
            state.load(groups)
            uids = options.get("allow_uids")
            server.allow_uids = None if uids is None else frozenset(uids)
            server.log.clear()
            server.log.muted = False
        elif name == "requests":
            return {"requests": server.log.requests(arg.get("op"))}
        elif name == "stop":
            await self.stop()
        elif name == "start":
            await self.start()
        elif name == "mute":
            if not isinstance(arg, bool):
                raise ValueError("mute takes true or false")
            server.log.muted = arg
        elif name == "status":
            n = len(server.connections)
            return {"serving": self.serving, "connections": n, "muted": server.log.muted}
        else:
            raise ValueError(f"unknown command {name!r}")
        return {}


async def serve_control(agent: FakeAgent, path: Path) -> asyncio.AbstractServer:
    """Accept control connections on ``path``; one answer line per command line."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            try:
                reply: dict[str, Any] = {"ok": True, **await agent.command(json.loads(line))}
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
    agent = FakeAgent(
        InMemoryState.from_json(groups),
        args.socket,
        node=args.node,
        allow_uids=options.get("allow_uids"),
    )
    if not args.stopped:
        await agent.start()
    control = await serve_control(agent, Path(args.control)) if args.control else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_with_stdin:
        threading.Thread(
            target=lambda: (sys.stdin.buffer.read(), loop.call_soon_threadsafe(stop.set)),
            name="stdin-eof",
            daemon=True,
        ).start()
    print(f"ready {args.socket}", flush=True)
    try:
        await stop.wait()
    finally:
        if control is not None:
            control.close()
            Path(args.control).unlink(missing_ok=True)
        await agent.stop()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m konorkestra.testing.fakeagent",
        description="The fake agent for SDK tests: the real UDS server over in-memory "
        "state, driven by JSON lines on --control (see the module docstring).",
    )
    parser.add_argument("--socket", required=True, help="UDS path to serve the protocol on")
    parser.add_argument("--state", help="vector or state JSON file to serve")
    parser.add_argument("--control", help="UDS path accepting control commands, one per line")
    parser.add_argument("--node", default="vector-node", help="node name reported by hello")
    parser.add_argument(
        "--stopped", action="store_true", help="start with the agent down (until a start command)"
    )
    parser.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="exit when stdin reaches end of file (the test that started it is gone)",
    )
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
