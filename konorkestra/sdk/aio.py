"""asyncio flavour of the SDK.

Example::

    from konorkestra.sdk.aio import connect_async

    async def main() -> None:
        async with await connect_async(name="checkout-worker") as client:
            cfg = await client.get_config("checkout")
            async with client.watch("checkout", since=cfg) as releases:
                async for cfg in releases:                # each release after cfg
                    reconfigure(cfg)

            @client.on_change("checkout")
            async def reload(new, old): ...               # raise to ack "failed"

Everything runs on the synchronous client's background threads; this module
only hands results to the event loop. ``get_config`` after the first call for
a group does not leave the loop. A release is acked ``applied`` for an
``async for`` watcher once it is handed to the iterator (the loop body cannot
report failure); use ``on_change`` when a reload can fail.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from konorkestra.sdk._internal.bind import Binding
from konorkestra.sdk._internal.client import Client, Watch
from konorkestra.sdk._internal.config import Config

T = TypeVar("T")
AsyncCallback = Callable[[Config, Config | None], Awaitable[object]]


async def connect_async(
    socket: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    timeout: float = 5.0,
) -> AsyncClient:
    """Like :func:`konorkestra.sdk.connect`, without blocking the loop."""
    client = await asyncio.to_thread(Client, socket, name=name, data_dir=data_dir, timeout=timeout)
    return AsyncClient(client)


class AsyncClient:
    """An asyncio front for :class:`konorkestra.sdk.Client`."""

    def __init__(self, client: Client) -> None:
        self.sync = client
        self._loop = asyncio.get_running_loop()

    async def get_config(self, group: str) -> Config:
        cfg = self.sync._latest.get(group)
        if cfg is not None:
            return cfg
        return await asyncio.to_thread(self.sync.get_config, group)

    def watch(self, group: str, *, since: Config | None = None) -> _AsyncWatch:
        """An async iterator over each release newer than the current one (or ``since``)."""
        return _AsyncWatch(self, group, since)

    def on_change(
        self, group: str, *, since: Config | None = None
    ) -> Callable[[AsyncCallback], AsyncCallback]:
        """Register ``async def fn(new, old)``; it runs on this loop, one at a time.

        ``since``: as in :meth:`konorkestra.sdk.Client.watch`.
        """

        def register(fn: AsyncCallback) -> AsyncCallback:
            def call(new: Config, old: Config | None) -> None:
                asyncio.run_coroutine_threadsafe(_run(fn, new, old), self._loop).result()

            self.sync.watch(group, call, since=since)
            return fn

        return register

    async def bind(self, group: str, name: str, cls: type[T]) -> Binding[T]:
        return await asyncio.to_thread(self.sync.bind, group, name, cls)

    async def report(self, group: str, metric: str, value: float) -> bool:
        return self.sync.report(group, metric, value)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def _run(fn: AsyncCallback, new: Config, old: Config | None) -> None:
    await fn(new, old)


class _AsyncWatch(AsyncIterator[Config]):
    """Iterate with ``async for``; stop with ``aclose()`` or use ``async with``."""

    def __init__(self, client: AsyncClient, group: str, since: Config | None) -> None:
        self._queue: asyncio.Queue[Config] = asyncio.Queue()
        self._loop = client._loop
        self._watch: Watch = client.sync.watch(group, self._hand_over, since=since)

    def _hand_over(self, new: Config, old: Config | None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, new)
        except RuntimeError:  # the loop is closed: nobody is iterating any more
            self._watch.cancel()

    async def __anext__(self) -> Config:
        return await self._queue.get()

    async def aclose(self) -> None:
        self._watch.cancel()

    async def __aenter__(self) -> _AsyncWatch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
