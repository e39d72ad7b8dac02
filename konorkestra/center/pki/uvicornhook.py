"""uvicorn, made to hand the verified peer certificate to the app (ADR 0003).

Usage::

    config = uvicorn_config(app, host="10.0.0.5", port=8443, ssl_context=ctx)
    server = CenterServer(config, self_test=make_self_test(ca, creds.anchor_pem))
    server.run()
    if server.self_test_error: sys.exit(1)

Invariants:

- uvicorn does not put the peer certificate in the ASGI scope.
  :class:`TLSExtH11Protocol` (forced via ``http=``) fills
  ``scope["extensions"]["tls"]`` per the ASGI TLS extension from the connection's
  verified peer certificate, and nothing else does. :class:`CenterServer` proves
  that at start-up by calling itself with a client certificate, and refuses to
  serve if the identity is not visible to the app.
- Proxy headers are off by default; idle keep-alive connections stay open
  :data:`KEEP_ALIVE` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.types import ASGIApp
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.h11_impl import H11Protocol

from konorkestra.center.app.graceful import GracefulServer
from konorkestra.center.pki.selftest import SelfTest

log = logging.getLogger(__name__)


_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


KEEP_ALIVE = 75
"""Seconds an idle keep-alive connection stays open (more than an agent's report heartbeat)."""


def _tls_extension(transport: asyncio.BaseTransport) -> dict[str, object] | None:
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain: list[str] = []
    name: str | None = None
    if der:
        cert = x509.load_der_x509_certificate(der)
        chain = [cert.public_bytes(serialization.Encoding.PEM).decode("ascii")]
        name = cert.subject.rfc4514_string()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def _with_tls_extension(app: ASGI3Application, ext: dict[str, object]) -> ASGI3Application:
    async def with_tls(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["extensions"] = {**(scope.get("extensions") or {}), "tls": dict(ext)}
        await app(scope, receive, send)

    return with_tls


class TLSExtH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus the ASGI TLS extension, computed once per connection.

    With TLS 1.3 and no renegotiation the peer certificate cannot change within a
    connection, so the extension is read at ``connection_made`` (after the handshake).
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ext = _tls_extension(transport)
        if ext is not None:
            self.app = _with_tls_extension(self.config.loaded_app, ext)


def uvicorn_config(
    app: ASGIApp, *, host: str, port: int, ssl_context: ssl.SSLContext, **kwargs: Any
) -> uvicorn.Config:
    """A uvicorn config forced onto :class:`TLSExtH11Protocol` and ``ssl_context``.

    Proxy headers are off by default: the Center terminates TLS itself, and a
    forwarded client address must not steer the per-source join rate limit.
    """
    kwargs.setdefault("proxy_headers", False)
    # Agents keep one connection for long-polls and reuse others for reports every
    # few seconds; uvicorn's 5 s default would make most reports a new TLS handshake.
    kwargs.setdefault("timeout_keep_alive", KEEP_ALIVE)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=TLSExtH11Protocol,
        ssl_context_factory=lambda _config, _default: ssl_context,
        **kwargs,
    )


class CenterServer(GracefulServer):
    """uvicorn server that runs the TLS self-test once listening, and stops if it fails.

    A :class:`~konorkestra.center.app.graceful.GracefulServer`: ``before_shutdown`` hooks
    run when a stop begins.
    """

    def __init__(self, config: uvicorn.Config, *, self_test: SelfTest | None) -> None:
        super().__init__(config)
        self._self_test = self_test
        self.self_test_error: Exception | None = None
        self.ready = False
        """True once listening and the self-test (if any) has passed."""

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        if self._self_test is None:
            self.ready = True
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        url = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        try:
            await self._self_test(url)
        except Exception as exc:
            log.error("TLS self-test failed, refusing to serve: %s", exc)
            self.self_test_error = exc
            self.should_exit = True
            return
        self.ready = True
