"""The agent's side of the Center's agent API: one keep-alive HTTP client, answers checked.

Example::

    client = CenterClient(lambda: httpx.AsyncClient(base_url=url, verify=ident.ssl_context()))
    answer = await client.desired({"checkout": 3}, wait=25.0)   # a Desired, or CenterError
    async for answer in client.stream({"checkout": 3}, idle=120, first=30):
        ...                                                     # one Desired per change
    blob = await client.blob(digest, max_bytes=size)
    await client.report({"events": [...]})                      # BatchRefused: never resend
    await client.renew(new_factory)                             # after a certificate renewal

Invariants:

* Every failure to talk to the Center (transport, HTTP status, an answer over
  its cap, a malformed answer) is a :class:`CenterError`; the sync loop backs
  off on it and never stops serving.
* An answer is read in chunks and refused as soon as it passes its cap
  (:data:`MAX_ANSWER`, or a blob's signed size): a Center cannot make the
  agent buffer endless data.
* A stream yields one :class:`Desired` per answer line; heartbeats (empty
  lines) only keep it alive. A stream the Center cannot give (404/405) or
  whose first answer does not arrive in time (a buffering proxy) is
  :class:`StreamUnsupported`, and the sync loop long-polls instead.
* Only a well-formed ``sha256:<hex>`` digest is ever put into a blob URL.
* A report batch refused for its content (:data:`REFUSED` statuses) raises
  :class:`~konorkestra.agent.reporting.BatchRefused`: it is dropped, not resent.
* Nothing here is trusted: an :class:`Offer` is unverified bytes until
  :class:`konorkestra.trust.Verifier` says otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from konorkestra.agent.reporting import BatchRefused
from konorkestra.model.canonical import is_digest

MAX_ANSWER = 32 * 1024 * 1024
"""Largest desired-state answer, in bytes."""

REFUSED = frozenset({400, 403, 413, 422})
"""Report statuses that say "this content, never": the batch is dropped, not resent."""


class CenterError(Exception):
    """Talking to the Center failed (transport, HTTP status, or a malformed answer)."""


@dataclass(frozen=True)
class Offer:
    """One Release offered by the Center (unverified until the Verifier says so)."""

    group: str
    sequence: int
    release_id: str
    bundle: bytes
    blobs: Mapping[str, bytes] = field(default_factory=dict)
    """Blobs the Center inlined, by digest: untrusted until checked like fetched ones."""


@dataclass(frozen=True)
class Desired:
    """One answer of ``GET /v1/agent/desired``."""

    offers: tuple[Offer, ...]
    freshness: bytes
    held: float


def parse_desired(raw: object) -> Desired:
    """Check the shape of a desired-state answer (contents are verified later)."""
    try:
        assert isinstance(raw, dict)
        offers = []
        for item in raw["releases"]:
            inline = item.get("blobs") or {}
            assert isinstance(inline, dict)
            blobs = {str(d): base64.b64decode(v, validate=True) for d, v in inline.items()}
            offers.append(
                Offer(str(item["group"]), int(item["sequence"]), str(item["id"]),
                      base64.b64decode(item["bundle"], validate=True), blobs)
            )  # fmt: skip
        freshness = base64.b64decode(raw["freshness"], validate=True)
        held = float(raw.get("wait", 0.0))
    except (AssertionError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise CenterError(f"malformed desired-state answer: {exc!r}") from None
    return Desired(tuple(offers), freshness, held)


ClientFactory = Callable[[], httpx.AsyncClient]


class StreamUnsupported(CenterError):
    """The Center (or a proxy on the way) cannot stream: use the long-poll for a while."""


class CenterClient:
    """The agent API over one keep-alive HTTP client (mTLS in production).

    With several ``urls`` (Center replicas sharing one store), requests go to
    one of them; a transport failure (refused, reset, timed out) moves to the
    next for the following requests. Without ``urls`` the factory's
    ``base_url`` is used.
    """

    def __init__(self, factory: ClientFactory, urls: Sequence[str] = ()) -> None:
        self.factory = factory
        self.http = factory()
        self._old: list[httpx.AsyncClient] = []
        self.urls = [u.rstrip("/") for u in urls]
        self._at = random.randrange(len(self.urls)) if self.urls else 0

    @property
    def center(self) -> str:
        """The Center URL requests go to now."""
        return self.urls[self._at] if self.urls else str(self.http.base_url).rstrip("/")

    def _url(self, path: str) -> str:
        return self.urls[self._at] + path if self.urls else path

    def _failed(self, what: str, exc: httpx.HTTPError) -> CenterError:
        """The error to raise for ``exc``; a transport failure also moves to the next Center."""
        if isinstance(exc, httpx.TransportError):
            self.failed_over()
        return CenterError(f"{what}: {type(exc).__name__}: {exc}")

    def failed_over(self) -> None:
        """The current Center failed at the transport level: use the next one."""
        if len(self.urls) > 1:
            self._at = (self._at + 1) % len(self.urls)

    async def renew(self, factory: ClientFactory) -> None:
        """Use new credentials from the next request on; in-flight requests finish.

        The client retired by the previous renewal is closed now: it has had a
        whole certificate period to finish its requests.
        """
        for old in self._old:
            await old.aclose()
        self._old = [self.http]
        self.factory = factory
        self.http = factory()

    async def close(self) -> None:
        for c in [*self._old, self.http]:
            await c.aclose()

    async def _get(self, path: str, *, params: Mapping[str, str] | None = None,
                   timeout: float = 30.0, cap: int = MAX_ANSWER) -> bytes:  # fmt: skip
        try:
            url = self._url(path)
            async with self.http.stream("GET", url, params=params, timeout=timeout) as resp:
                data = bytearray()
                async for chunk in resp.aiter_bytes():
                    data += chunk
                    if len(data) > cap:
                        raise CenterError(f"GET {path}: answer larger than {cap} bytes")
                if resp.status_code != 200:
                    raise CenterError(f"GET {path}: {resp.status_code} {_message(bytes(data))}")
                return bytes(data)
        except httpx.HTTPError as exc:
            raise self._failed(f"GET {path}", exc) from exc

    async def stream(
        self, have: Mapping[str, int], *, idle: float, first: float
    ) -> AsyncIterator[Desired]:
        """The answers of ``GET /v1/agent/stream``, as they come, until the Center ends it.

        Raises :class:`StreamUnsupported` when the Center has no stream route or
        the first answer does not arrive within ``first`` seconds (a buffering
        proxy), :class:`CenterError` when nothing (not even a heartbeat) arrives
        for ``idle`` seconds or the connection fails. Each line is capped at
        :data:`MAX_ANSWER` bytes.
        """
        path = "/v1/agent/stream"
        params = {"have": ",".join(f"{g}:{s}" for g, s in sorted(have.items()))}
        timeout = httpx.Timeout(30.0, read=idle)
        try:
            req = self.http.build_request("GET", self._url(path), params=params, timeout=timeout)
            resp = await self.http.send(req, stream=True)
        except httpx.HTTPError as exc:
            raise self._failed(f"GET {path}", exc) from exc
        try:
            if resp.status_code in (404, 405):
                raise StreamUnsupported(f"GET {path}: {resp.status_code}: no stream here")
            if resp.status_code != 200:
                body = await resp.aread()
                raise CenterError(f"GET {path}: {resp.status_code} {_message(body[:4096])}")
            async for line in _lines(resp, first=first):
                if not line:
                    continue  # a heartbeat
                try:
                    raw = json.loads(line)
                except ValueError as exc:
                    raise CenterError(f"stream line is not JSON: {exc}") from None
                if isinstance(raw, dict) and "closed" in raw:
                    raise CenterError(f"the Center closed the stream: {str(raw['closed'])[:80]}")
                yield parse_desired(raw)
        except httpx.HTTPError as exc:
            raise self._failed(f"GET {path}", exc) from exc
        finally:
            await resp.aclose()

    async def desired(self, have: Mapping[str, int], wait: float) -> Desired:
        params = {"have": ",".join(f"{g}:{s}" for g, s in sorted(have.items())),
                  "wait": f"{wait:.1f}"}  # fmt: skip
        raw = await self._get("/v1/agent/desired", params=params, timeout=wait + 15.0)
        try:
            return parse_desired(json.loads(raw))
        except ValueError as exc:
            raise CenterError(f"desired-state answer is not JSON: {exc}") from None

    async def blob(self, digest: str, max_bytes: int) -> bytes:
        if not is_digest(digest):
            raise CenterError(f"refusing to fetch a malformed digest {digest[:80]!r}")
        return await self._get(f"/v1/agent/blobs/{digest}", cap=max_bytes)

    async def report(self, body: Mapping[str, Any]) -> None:
        try:
            url = self._url("/v1/agent/reports")
            resp = await self.http.post(url, json=dict(body), timeout=30.0)
        except httpx.HTTPError as exc:
            raise self._failed("POST reports", exc) from exc
        if resp.status_code in REFUSED:
            raise BatchRefused(f"{resp.status_code} {_message(resp.content)}")
        if resp.status_code != 200:
            raise CenterError(f"POST reports: {resp.status_code} {_message(resp.content)}")


async def _lines(resp: httpx.Response, *, first: float) -> AsyncIterator[bytes]:
    """The lines of a streamed body (without their newline), each at most MAX_ANSWER bytes.

    The first line must arrive within ``first`` seconds (:class:`StreamUnsupported`).
    """
    chunks = resp.aiter_bytes()
    buffer = bytearray()
    got_line = False
    while True:
        try:
            if got_line:
                chunk = await anext(chunks)
            else:
                async with asyncio.timeout(first):
                    chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise StreamUnsupported(
                f"no answer within {first:.0f} s: is a proxy buffering?"
            ) from None
        buffer += chunk
        while (end := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            got_line = True
            yield line
        if len(buffer) > MAX_ANSWER:
            raise CenterError(f"a stream line is longer than {MAX_ANSWER} bytes")


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")
