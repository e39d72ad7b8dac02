"""Small helpers shared by the route modules: context, bodies, query parameters.

Invariants:

* A body that is not valid JSON, not UTF-8, or not a JSON object is a 400
  ``bad_request`` in the stable error shape; a body over :data:`MAX_BODY` is 413.
* Query parameters are validated here; a bad one is a 400 naming it.
* Store access from a route goes through :func:`db`, which runs it in a worker
  thread so the event loop never waits on the database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from konorkestra.center.errors import ApiError, bad_request

if TYPE_CHECKING:
    from konorkestra.center.context import CenterContext

MAX_BODY = 1 << 20
T = TypeVar("T")


def ctx_of(request: Request) -> CenterContext:
    ctx: CenterContext = request.app.state.ctx
    return ctx


async def db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking store work off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400/413 :class:`ApiError`."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(413, f"request body is over {MAX_BODY} bytes")
    if not raw.strip():
        raise bad_request("the request body is empty; send a JSON object")
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad_request("the request body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise bad_request(
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}",
            line=exc.lineno,
            column=exc.colno,
        ) from None
    if not isinstance(value, dict):
        raise bad_request("the request body must be a JSON object")
    return value


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
