"""The agent API client: answers checked for shape and size, failures are CenterError."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest

from konorkestra.agent.centerclient import (
    CenterClient,
    CenterError,
    StreamUnsupported,
    parse_desired,
)
from konorkestra.agent.reporting import BatchRefused


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_well_formed_answer_parses() -> None:
    raw = {
        "releases": [{"group": "g", "sequence": 2, "id": "g-2", "bundle": b64(b"B"),
                      "blobs": {"sha256:" + "a" * 64: b64(b"x")}}],
        "freshness": b64(b"F"),
        "wait": 3,
    }  # fmt: skip
    d = parse_desired(raw)
    assert d.freshness == b"F" and d.held == 3.0
    assert d.offers[0].bundle == b"B" and d.offers[0].blobs == {"sha256:" + "a" * 64: b"x"}


@pytest.mark.parametrize(
    "raw",
    [[], {"releases": [], "freshness": "!!"}, {"releases": [{"group": "g"}], "freshness": ""},
     {"releases": [], "freshness": "", "wait": "soon"}],
)  # fmt: skip
def test_a_malformed_answer_is_a_center_error(raw: object) -> None:
    with pytest.raises(CenterError, match="malformed desired-state answer"):
        parse_desired(raw)


def client_for(handler: httpx.MockTransport) -> CenterClient:
    return CenterClient(lambda: httpx.AsyncClient(base_url="http://center", transport=handler))


def test_a_blob_over_its_cap_is_refused_while_reading() -> None:
    transport = httpx.MockTransport(lambda req: httpx.Response(200, content=b"x" * 100))

    async def go() -> None:
        client = client_for(transport)
        try:
            with pytest.raises(CenterError, match="larger than 10 bytes"):
                await client.blob("sha256:" + "a" * 64, 10)
            with pytest.raises(CenterError, match="malformed digest"):
                await client.blob("../../etc/passwd", 10)
        finally:
            await client.close()

    asyncio.run(go())


def test_a_report_refused_for_its_content_is_batch_refused() -> None:
    def answer(req: httpx.Request) -> httpx.Response:
        return httpx.Response(413, json={"error": {"message": "too many items"}})

    async def go() -> None:
        client = client_for(httpx.MockTransport(answer))
        try:
            with pytest.raises(BatchRefused, match="413 too many items"):
                await client.report({"events": []})
        finally:
            await client.close()

    asyncio.run(go())


def frame(seq: int) -> bytes:
    release = {"group": "g", "sequence": seq, "id": f"g-{seq}", "bundle": b64(b"B")}
    return json.dumps({"node": "n", "releases": [release], "freshness": b64(b"F"), "wait": 0})


def test_a_stream_yields_each_answer_line_and_skips_heartbeats() -> None:
    body = (
        frame(1).encode() + b"\n\n\n" + frame(2).encode() + b"\n" + b'{"closed":"node_revoked"}\n'
    )
    seen: list[str] = []

    def handle(req: httpx.Request) -> httpx.Response:
        seen.append(str(req.url))
        return httpx.Response(200, content=body)

    async def go() -> list[int]:
        client = client_for(httpx.MockTransport(handle))
        got: list[int] = []
        try:
            with pytest.raises(CenterError, match="closed the stream: node_revoked"):
                async for answer in client.stream({"g": 0}, idle=5, first=5):
                    got.append(answer.offers[0].sequence)
        finally:
            await client.close()
        return got

    assert asyncio.run(go()) == [1, 2]
    assert seen == ["http://center/v1/agent/stream?have=g%3A0"]


def test_a_center_without_the_stream_route_is_stream_unsupported() -> None:
    transport = httpx.MockTransport(lambda req: httpx.Response(404, json={"error": {}}))

    async def go() -> None:
        client = client_for(transport)
        try:
            with pytest.raises(StreamUnsupported):
                async for _ in client.stream({}, idle=5, first=5):
                    pass
        finally:
            await client.close()

    asyncio.run(go())


def test_a_transport_failure_moves_to_the_next_center() -> None:
    asked: list[str] = []

    def handle(req: httpx.Request) -> httpx.Response:
        asked.append(req.url.host)
        if req.url.host == "a":
            raise httpx.ConnectError("refused", request=req)
        return httpx.Response(200, content=frame(1))

    async def go() -> None:
        client = CenterClient(
            lambda: httpx.AsyncClient(transport=httpx.MockTransport(handle)),
            ["https://a:1/", "https://b:2"],
        )
        client._at = 0  # start at "a"
        try:
            with pytest.raises(CenterError, match="ConnectError"):
                await client.desired({}, wait=0)
            assert client.center == "https://b:2"
            assert (await client.desired({}, wait=0)).offers[0].sequence == 1
        finally:
            await client.close()

    asyncio.run(go())
    assert asked == ["a", "b"]
