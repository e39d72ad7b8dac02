"""Stopping the Center: drain wakes parked requests, and the server drains before it waits.

The end-to-end stop (real processes, SIGTERM) is ``tests/e2e/test_shutdown.py``.
"""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from konorkestra.center.agentapi.notify import ReleaseNotifier
from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.factory import Parks, begin_shutdown, create_app
from konorkestra.center.app.graceful import GracefulServer


def test_drain_wakes_every_parked_subscription_and_parks_no_new_one() -> None:
    async def main() -> None:
        notifier = ReleaseNotifier()
        await notifier.start()
        with notifier.subscribe({"a"}) as one, notifier.subscribe({"a", "b"}) as two:
            waits = [asyncio.create_task(s.wait(55)) for s in (one, two)]
            await asyncio.sleep(0)  # both parked
            assert notifier.parked() == 2
            notifier.drain()
            assert await asyncio.gather(*waits) == [True, True]
            assert notifier.closing
        with notifier.subscribe({"a"}) as late:  # after drain: never parks
            started = time.monotonic()
            assert await late.wait(55) is True
            assert time.monotonic() - started < 1
        notifier.drain()  # idempotent
        await notifier.stop()

    asyncio.run(main())


def test_begin_shutdown_drains_the_services_that_park() -> None:
    notifier = ReleaseNotifier()
    ctx = CenterContext(engine=None, trust_root=b"", services=[notifier])  # type: ignore[arg-type]
    assert isinstance(notifier, Parks)
    begin_shutdown(ctx)
    assert notifier.closing


def test_parked_requests_are_a_metric() -> None:
    async def main() -> None:
        notifier = ReleaseNotifier()
        ctx = CenterContext(engine=None, trust_root=b"", services=[notifier])  # type: ignore[arg-type]
        create_app(ctx)
        with notifier.subscribe({"a"}):
            assert b"konorkestra_center_parked_requests 1.0" in ctx.metrics.render()
        assert b"konorkestra_center_parked_requests 0.0" in ctx.metrics.render()

    asyncio.run(main())


def test_the_server_runs_its_hooks_before_it_waits_on_a_parked_request() -> None:
    """A request parked on an event is answered (200), not cancelled, when the server stops."""

    async def main() -> None:
        release = asyncio.Event()

        async def park(_request: Request) -> JSONResponse:
            await release.wait()
            return JSONResponse({"releases": []})

        app = Starlette(routes=[Route("/park", park)])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, lifespan="off", log_level="warning",
                                timeout_graceful_shutdown=30)  # fmt: skip
        server = GracefulServer(config)
        server.before_shutdown.append(release.set)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        async with httpx.AsyncClient() as client:
            while not server.started:
                await asyncio.sleep(0.01)
            request = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/park"))
            while not server.server_state.tasks:  # the request is in the app
                await asyncio.sleep(0.01)
            started = time.monotonic()
            server.should_exit = True
            response = await request
            await serving
        assert response.status_code == 200 and response.json() == {"releases": []}
        assert time.monotonic() - started < 2  # not the 30 s graceful timeout

    asyncio.run(main())
