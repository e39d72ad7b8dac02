"""The agent's side of the Center's agent API: one keep-alive HTTP client, answers checked.

Example::

    client = CenterClient(lambda: httpx.AsyncClient(base_url=url, verify=ident.ssl_context()))
    answer = await client.desired({"checkout": 3}, wait=25.0)   # a Desired, or CenterError
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
* Only a well-formed ``sha256:<hex>`` digest is ever put into a blob URL.
* A report batch refused for its content (:data:`REFUSED` statuses) raises
  :class:`~konorkestra.agent.reporting.BatchRefused`: it is dropped, not resent.
* Nothing here is trusted: an :class:`Offer` is unverified bytes until
  :class:`konorkestra.trust.Verifier` says otherwise.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
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


class CenterClient:
    """The agent API over one keep-alive HTTP client (mTLS in production)."""

    def __init__(self, factory: ClientFactory) -> None:
        self.factory = factory
        self.http = factory()
        self._old: list[httpx.AsyncClient] = []

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
            async with self.http.stream("GET", path, params=params, timeout=timeout) as resp:
                data = bytearray()
                async for chunk in resp.aiter_bytes():
                    data += chunk
                    if len(data) > cap:
                        raise CenterError(f"GET {path}: answer larger than {cap} bytes")
                if resp.status_code != 200:
                    raise CenterError(f"GET {path}: {resp.status_code} {_message(bytes(data))}")
                return bytes(data)
        except httpx.HTTPError as exc:
            raise CenterError(f"GET {path}: {type(exc).__name__}: {exc}") from exc

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
            resp = await self.http.post("/v1/agent/reports", json=dict(body), timeout=30.0)
        except httpx.HTTPError as exc:
            raise CenterError(f"POST reports: {type(exc).__name__}: {exc}") from exc
        if resp.status_code in REFUSED:
            raise BatchRefused(f"{resp.status_code} {_message(resp.content)}")
        if resp.status_code != 200:
            raise CenterError(f"POST reports: {resp.status_code} {_message(resp.content)}")


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")
