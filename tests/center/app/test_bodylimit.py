"""konorkestra.center.app.bodylimit and web.read_body, driven as raw ASGI: how much of a
body is ever received, and when the connection is marked for closing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from konorkestra.center.app.bodylimit import DRAIN, CloseUnreadBody
from konorkestra.center.app.errors import ApiError
from konorkestra.center.app.web import MAX_BODY, json_body, read_body

CHUNK = 1 << 16
MIB = 1 << 20


class Upload:
    """An ASGI ``receive`` serving ``total`` bytes in chunks, counting what was taken."""

    def __init__(self, total: int) -> None:
        self.total, self.taken = total, 0

    async def __call__(self) -> dict[str, Any]:
        if self.taken >= self.total:
            return {"type": "http.disconnect"}
        piece = min(CHUNK, self.total - self.taken)
        self.taken += piece
        return {"type": "http.request", "body": b"a" * piece, "more_body": self.taken < self.total}


def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/", "headers": headers}


CHUNKED = [(b"transfer-encoding", b"chunked")]


def run(app: Any, total: int, headers: list[tuple[bytes, bytes]]) -> tuple[Upload, dict[str, Any]]:
    upload, sent = Upload(total), []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(CloseUnreadBody(app)(scope(headers), upload, send))
    return upload, sent[0]


async def answers_at_once(_scope: Any, _receive: Any, send: Any) -> None:
    await JSONResponse({"error": "no"}, status_code=401)(_scope, _receive, send)


async def reads_all(scope_: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await JSONResponse({})(scope_, receive, send)


def closes(start: dict[str, Any]) -> bool:
    return (b"connection", b"close") in start["headers"]


def test_a_small_unread_body_is_drained_and_the_connection_kept() -> None:
    upload, start = run(answers_at_once, MIB, CHUNKED)
    assert upload.taken == MIB and not closes(start)


def test_a_huge_unread_body_is_drained_at_most_DRAIN_then_closed() -> None:
    upload, start = run(answers_at_once, 300 * MIB, CHUNKED)
    assert upload.taken <= DRAIN + CHUNK and closes(start)


def test_a_declared_length_beyond_the_drain_is_not_read_at_all() -> None:
    upload, start = run(answers_at_once, 300 * MIB, [(b"content-length", b"%d" % (300 * MIB))])
    assert upload.taken == 0 and closes(start)


def test_a_body_the_app_read_keeps_the_connection() -> None:
    upload, start = run(reads_all, 10 * MIB, CHUNKED)
    assert upload.taken == 10 * MIB and not closes(start)


def test_a_request_without_body_passes_through() -> None:
    upload, start = run(answers_at_once, 0, [(b"content-length", b"0")])
    assert upload.taken == 0 and not closes(start)


def body_of(total: int, headers: list[tuple[bytes, bytes]]) -> tuple[Upload, Any]:
    upload = Upload(total)
    request = Request(scope(headers), upload)
    try:
        return upload, asyncio.run(read_body(request))
    except ApiError as exc:
        return upload, exc


def test_read_body_refuses_a_declared_length_before_reading() -> None:
    upload, result = body_of(MAX_BODY + 1, [(b"content-length", b"%d" % (MAX_BODY + 1))])
    assert isinstance(result, ApiError) and result.status == 413 and upload.taken == 0


def test_read_body_stops_counting_one_chunk_past_the_limit() -> None:
    upload, result = body_of(300 * MIB, CHUNKED)
    assert isinstance(result, ApiError) and result.status == 413
    assert upload.taken <= MAX_BODY + CHUNK


def test_read_body_takes_a_body_at_the_limit() -> None:
    _, result = body_of(MAX_BODY, CHUNKED)
    assert result == b"a" * MAX_BODY


@pytest.mark.parametrize("value", [b"abc", b"-1", b"\xd9\xa1"])
def test_a_content_length_that_is_not_digits_is_a_400(value: bytes) -> None:
    _, result = body_of(10, [(b"content-length", value)])
    assert isinstance(result, ApiError) and result.status == 400


def test_json_body_names_the_problem_in_details() -> None:
    body = b'{"role": "viewer", "role": "admin"}'

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    with pytest.raises(ApiError) as info:
        asyncio.run(json_body(Request(scope([]), receive)))
    assert info.value.status == 400 and info.value.details == {"problem": "duplicate_key"}
    assert "duplicate key 'role'" in info.value.message
