"""The fake agent on its own event loop in a daemon thread, for Python tests.

Example::

    with ServerThread(InMemoryState.from_json(doc), tmp_path / "agent.sock") as srv:
        client = sdk.connect(srv.server.path)
        srv.apply({"publish": {"group": "checkout", "release": "checkout-4", "sequence": 4,
                               "config": {}}})                 # watchers notified on return
        srv.apply({"requests": {"op": "ack"}})["requests"]    # what clients acked

:meth:`ServerThread.apply` takes the control commands of
:mod:`konorkestra.testing.fakeagent`; a failing command raises its exception.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from konorkestra.testing.fakeagent import FakeAgent
from konorkestra.testing.memstate import InMemoryState

T = TypeVar("T")


class ServerThread:
    """A :class:`FakeAgent` serving from a daemon thread; ``server`` is its UDS server."""

    def __init__(self, state: InMemoryState, path: str | Path, **options: Any) -> None:
        self.state = state
        self.agent = FakeAgent(state, path, **options)
        self.server = self.agent.server
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

    def apply(self, command: Mapping[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Run one control command on the server's loop; return its answer's members."""
        future = asyncio.run_coroutine_threadsafe(self.agent.command(command), self.loop)
        return future.result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn()`` on the server's loop and return its result."""

        async def run() -> T:
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
        await self.agent.start()
        self._ready.set_result(None)
        try:
            await self._stop.wait()
        finally:
            await self.agent.stop()
