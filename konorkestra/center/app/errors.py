"""JSON errors with one stable shape, for every status the API returns.

Every error body is::

    {"error": {"code": "not_found", "message": "no release 'r-1'", "details": {}}}

Invariants:

* ``code`` is a stable, machine-readable string; ``message`` is one sentence
  for a person; ``details`` is always an object (possibly empty).
* No handler ever returns a traceback or an exception's repr: unexpected
  exceptions become a 500 ``internal`` error and are logged server-side only.
* Routing errors (unknown path, wrong method) take the same shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("konorkestra.center")

_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    """An error the caller should see, with its HTTP status and stable code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _DEFAULT_CODES.get(status, "error")
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


def bad_request(message: str, **details: Any) -> ApiError:
    return ApiError(400, message, details=details)


def not_found(message: str, **details: Any) -> ApiError:
    return ApiError(404, message, details=details)


def conflict(message: str, **details: Any) -> ApiError:
    return ApiError(409, message, details=details)


def invalid(message: str, **details: Any) -> ApiError:
    return ApiError(422, message, details=details)


def error_response(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": dict(details or {})}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message = {
        404: "no such resource",
        405: "method not allowed on this resource",
    }.get(status, str(exc.detail))
    return error_response(status, _DEFAULT_CODES.get(status, "error"), message, {}, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal error; see the Center's log")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: _api_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
"""Pass to :class:`starlette.applications.Starlette` as ``exception_handlers``."""
