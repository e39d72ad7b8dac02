"""Small helpers shared by the route modules: context, bodies, query parameters.

Invariants:

* :func:`json_body` is the one way a route reads a body (:func:`read_body`
  for the bytes), and at most ``MAX_BODY`` plus one chunk is ever held: a
  declared ``Content-Length`` over :data:`MAX_BODY` is a 413 before a byte is
  read; any other body is streamed and counted, and is a 413 as soon as the
  count passes ``MAX_BODY``. What happens to the unread rest (a bounded drain,
  then the connection is closed) is :mod:`konorkestra.center.app.bodylimit`'s.
* The body is parsed by :func:`konorkestra.model.strictjson.parse_object`:
  anything it refuses (not UTF-8, empty, syntax, nesting deeper than 64, a
  number over 1000 characters, NaN/Infinity, a duplicate key, a lone
  surrogate, not an object) is a 400 ``bad_request`` whose message names the
  problem and whose ``details.problem`` is the parser's stable word. Hostile
  input never reaches a 500.
* Query parameters are validated here; a bad one is a 400 naming it.
* Store access from a route goes through :func:`db`, which runs it in a worker
  thread so the event loop never waits on the database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from konorkestra.center.app.errors import ApiError, bad_request
from konorkestra.model.strictjson import JsonRefused, parse_object

if TYPE_CHECKING:
    from konorkestra.center.app.context import CenterContext

MAX_BODY = 1 << 20
T = TypeVar("T")


def ctx_of(request: Request) -> CenterContext:
    ctx: CenterContext = request.app.state.ctx
    return ctx


async def db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking store work off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


def _too_large() -> ApiError:
    return ApiError(413, f"request body is over {MAX_BODY} bytes", details={"limit": MAX_BODY})


async def read_body(request: Request) -> bytes:
    """The raw body, at most :data:`MAX_BODY` bytes, or a 413 as soon as it is over."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise bad_request("the Content-Length header is not a number")
        if len(declared) > 18 or int(declared) > MAX_BODY:
            raise _too_large()  # not a byte read
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                raise _too_large()
    except ClientDisconnect:
        raise bad_request("the client went away before the request body ended") from None
    return bytes(raw)


async def json_body(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, or a 400/413 :class:`ApiError`.

    With ``allow_empty``, a body of only whitespace is ``{}``.
    """
    raw = await read_body(request)
    if allow_empty and not raw.strip():
        return {}
    try:
        return parse_object(raw)
    except JsonRefused as exc:
        raise bad_request(f"the request body is {exc.message}", **exc.details()) from None


def query_int(request: Request, name: str, default: int, *, lo: int = 0, hi: int = 10_000) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"query parameter {name!r} must be an integer", parameter=name) from None
    if not lo <= value <= hi:
        raise bad_request(f"query parameter {name!r} must be in {lo}..{hi}", parameter=name)
    return value


def ok(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)
