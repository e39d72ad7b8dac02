"""A uvicorn server that lets the app answer its parked requests before it stops.

Example::

    server = GracefulServer(uvicorn.Config(app, lifespan="on"))
    server.before_shutdown.append(lambda: drain_services(ctx))
    server.run(sockets=[sock])         # SIGTERM/SIGINT: drain, then uvicorn's shutdown

Why: uvicorn's stop sequence (``Server.shutdown``, uvicorn 0.47–0.54) is

1. stop accepting; close idle keep-alive connections, mark busy ones
   "close after this response";
2. wait for open connections to finish, at most ``timeout_graceful_shutdown``
   seconds, then *cancel* the requests still running (a traceback and a 500 for
   each);
3. only then run the ASGI lifespan shutdown (our services' ``stop``).

A parked agent long-poll (up to 55 s) is still running at step 2, and the
lifespan is too late to wake it. The ASGI lifespan has no "stopping" event, so
the one place that runs when a stop *begins*, on the event loop, whatever
caused it (signal, failed self-test), is ``Server.shutdown`` itself: this
subclass runs ``before_shutdown`` there and then uvicorn's own sequence.
``shutdown`` is a public method of ``uvicorn.Server``; no private attribute is
used. The e2e test ``tests/e2e/test_shutdown.py`` pins the behaviour.

Invariants:

* Every ``before_shutdown`` hook runs exactly once per stop, on the event loop,
  before uvicorn closes a single connection; a hook that raises is logged and
  does not prevent the others or the stop.
* Hooks must not block: they wake requests, which then answer through the
  connections uvicorn is draining (with ``Connection: close``).
* Every ``when_serving`` hook runs exactly once, on the event loop, after
  ``startup`` succeeded (listening, lifespan started, and for a
  ``CenterServer`` the TLS self-test passed) and before the main loop: never
  for a server that failed to start. ``konorkestra center`` sends systemd's
  ``READY=1`` there.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import uvicorn

log = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    """``uvicorn.Server`` plus hooks that run when shutdown begins."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.before_shutdown: list[Callable[[], object]] = []
        """Called (in order) when the stop begins, before connections are drained."""
        self.when_serving: list[Callable[[], object]] = []
        """Called (in order) once started and serving, before the main loop."""

    async def main_loop(self) -> None:
        # uvicorn runs main_loop only when startup succeeded (``_serve``: not should_exit).
        for hook in self.when_serving:
            try:
                hook()
            except Exception as exc:
                log.error("serving hook %r failed: %s", hook, exc)
        await super().main_loop()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for hook in self.before_shutdown:
            try:
                hook()
            except Exception as exc:  # a hook must never turn a stop into a crash
                log.error("shutdown hook %r failed: %s", hook, exc)
        await super().shutdown(sockets)
