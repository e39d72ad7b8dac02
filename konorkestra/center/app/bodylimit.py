"""What happens to the part of a request body the application did not read.

Example::

    Starlette(routes=..., middleware=[Middleware(CloseUnreadBody)])

Why: once a response is complete, uvicorn's h11 protocol resumes reading and
discards the rest of the body, however long, to keep the connection. For a 413
to a 300 MB upload (or a 401 to an unauthenticated one) that is 300 MB taken in
for nothing. Closing at once has the opposite flaw: a socket closed with unread
data sends a TCP reset, and the client, still sending, loses the answer. So,
like a web server's "lingering close", the rest is drained up to a bound, and
past it the connection is closed.

Invariants:

* A request "has a body" when it declares a non-zero ``Content-Length`` or any
  ``Transfer-Encoding``. Other requests pass through untouched.
* When the application starts a response before receiving the body's last
  chunk, up to :data:`DRAIN` more bytes are received and dropped first (none if
  the declared length says more than that is left). If the body ended, the
  response goes out as the application made it (keep-alive intact); if not, it
  carries ``Connection: close`` and uvicorn closes the connection after it.
* Nothing is buffered here: dropped chunks are dropped, so a request costs the
  Center at most :data:`DRAIN` bytes of reading beyond what the route read
  (at most :data:`konorkestra.center.app.web.MAX_BODY`) and no memory.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN = 4 << 20
"""Most bytes of an unread body received (and dropped) so the client can read the answer."""
_CLOSE = (b"connection", b"close")


def _declared(scope: Scope) -> tuple[bool, int | None]:
    """(has a body, declared length if any)."""
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return True, None
        if name == b"content-length":
            length = int(value) if value.isdigit() and len(value) < 19 else 1 << 62
            return length > 0, length
    return False, None


class CloseUnreadBody:
    """ASGI middleware: drain a little of an unread body, else ``Connection: close``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        has_body, declared = _declared(scope) if scope["type"] == "http" else (False, None)
        if not has_body:
            await self.app(scope, receive, send)
            return
        ended = False
        received = 0

        async def watching_receive() -> Message:
            nonlocal ended, received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                ended = ended or not message.get("more_body", False)
            return message

        async def drain() -> None:
            budget = DRAIN
            if declared is not None and declared - received > budget:
                return  # more left than we would read: do not start
            while not ended and budget >= 0:
                message = await watching_receive()
                if message["type"] != "http.request":
                    return  # the client went away
                budget -= len(message.get("body", b""))

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not ended:
                await drain()
                if not ended:
                    headers = [h for h in message.get("headers", ()) if h[0] != b"connection"]
                    message = {**message, "headers": [*headers, _CLOSE]}
            await send(message)

        await self.app(scope, watching_receive, closing_send)
