"""The TLS self-test: proof at start-up that the app sees verified client identities.

Usage::

    routes = [tls_self_test_route()]                       # GET /v1/tls/self-test
    self_test = make_self_test(ca, creds.anchor_pem)
    await self_test("https://127.0.0.1:8443")              # TLSSelfTestFailed otherwise

Invariants:

- ``GET /v1/tls/self-test`` answers only the caller's own node identity (or
  null) and reveals nothing else.
- The self-test passes only when a connection with a throwaway node
  certificate is seen as exactly that node, and a connection without one is
  seen as no node; :class:`~konorkestra.center.pki.uvicornhook.CenterServer`
  refuses to serve otherwise.
"""

from __future__ import annotations

import datetime as dt
import secrets
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from konorkestra.center.pki.ca import CertificateAuthority
from konorkestra.center.pki.identity import node_identity
from konorkestra.model.types import NodeId

SELF_TEST_PATH = "/v1/tls/self-test"


class TLSSelfTestFailed(Exception):
    """The running server does not expose verified client identities to the app."""


async def _self_test_endpoint(request: Request) -> Response:
    return JSONResponse({"node_id": node_identity(request)})


def tls_self_test_route() -> Route:
    """``GET /v1/tls/self-test``: the caller's own node identity (or null). Reveals nothing else."""
    return Route(SELF_TEST_PATH, _self_test_endpoint, methods=["GET"])


SelfTest = Callable[[str], Awaitable[None]]


def make_self_test(ca: CertificateAuthority, anchor_pem: bytes) -> SelfTest:
    """A self-test: with a throwaway node certificate the app must see exactly that node,
    and without one it must see none."""

    async def self_test(base_url: str) -> None:
        node = NodeId(f"selftest-{secrets.token_hex(8)}")
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .sign(key, hashes.SHA256())
        )
        issued = ca.sign_node_csr(
            csr.public_bytes(serialization.Encoding.PEM), node, lifetime=dt.timedelta(minutes=2)
        )
        anonymous = ssl.create_default_context(cadata=anchor_pem.decode("ascii"))
        anonymous.check_hostname = False
        with_cert = ssl.create_default_context(cadata=anchor_pem.decode("ascii"))
        with_cert.check_hostname = False
        with tempfile.TemporaryDirectory() as tmp:
            pem = Path(tmp) / "self-test.pem"
            pem.touch(mode=0o600)
            pem.write_bytes(
                issued.cert_pem
                + key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            with_cert.load_cert_chain(str(pem))
        seen = await _whoami(base_url, with_cert)
        if seen != node:
            raise TLSSelfTestFailed(
                f"app saw client identity {seen!r}, expected {node!r}: "
                "the uvicorn protocol does not expose the TLS extension"
            )
        if await _whoami(base_url, anonymous) is not None:
            raise TLSSelfTestFailed("app saw a client identity on a connection without one")

    return self_test


async def _whoami(base_url: str, ctx: ssl.SSLContext) -> object:
    try:
        async with httpx.AsyncClient(verify=ctx, timeout=10.0) as client:
            resp = await client.get(base_url + SELF_TEST_PATH)
    except httpx.HTTPError as exc:
        raise TLSSelfTestFailed(f"cannot reach own listener at {base_url}: {exc}") from exc
    if resp.status_code != 200:
        raise TLSSelfTestFailed(f"{SELF_TEST_PATH} answered {resp.status_code}")
    return resp.json().get("node_id")
