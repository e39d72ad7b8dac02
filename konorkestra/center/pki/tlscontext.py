"""Transport security for the Center: one TLS listener, mTLS identity for agents.

Usage::

    tls = CenterTLS.prepare(data / "pki", trust_domain="prod.example", hosts=["10.0.0.5"])
    app.add_middleware(ClientIdentityMiddleware, trust_domain="prod.example",
                       authorizer=enrollment_service)
    server = tls.server(app, host="10.0.0.5", port=8443)   # protocol + context + self-test
    server.run()
    if server.self_test_error: sys.exit(1)

Invariants:

- TLS >= 1.2; ``verify_mode=CERT_OPTIONAL``: operators (bearer tokens) connect
  without a client certificate, agents with one. A certificate that is sent is
  verified against the issuing CA during the handshake; a bad one (unknown CA,
  expired, not yet valid, wrong EKU) ends the handshake.
- A server from :meth:`CenterTLS.server` always runs on
  :class:`~konorkestra.center.pki.uvicornhook.TLSExtH11Protocol` with the
  start-up self-test (:mod:`konorkestra.center.pki.selftest`); what a request's
  certificate means is :mod:`konorkestra.center.pki.identity`'s.
- Making that server sets asyncio's TLS read buffer to :data:`SSL_READ_BUFFER`
  (:func:`limit_ssl_read_buffer`) for the whole process: asyncio allocates it,
  zero-filled, for every TLS connection (256 KiB by default: most of a parked
  agent's cost). Any size reads the same bytes, a smaller one in more calls
  (it bounds one socket read, not a TLS record or a request). The Center's
  process serves; its own outgoing asyncio TLS (the self-test) shares the size.
"""

from __future__ import annotations

import asyncio.sslproto
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from konorkestra.center.pki.ca import CertificateAuthority
from konorkestra.center.pki.selftest import make_self_test
from konorkestra.center.pki.servercert import (
    ServerCredentials,
    ensure_server_certificate,
    external_server_credentials,
)
from konorkestra.center.pki.uvicornhook import CenterServer, uvicorn_config

SSL_READ_BUFFER = 8 * 1024
"""Bytes of asyncio's per-connection TLS read buffer in the Center (asyncio: 256 KiB).

Measured (``bench/conn_memory.py``, 1,000 parked mTLS agents): 328 KiB of Center
RSS per connection at 256 KiB, 87 at 16, 74 at 4; a 64 MiB upload over loopback
took 0.08 s at 256 KiB, 0.14 at 16, 0.21 at 8, 0.30 at 4."""


def limit_ssl_read_buffer(size: int = SSL_READ_BUFFER) -> None:
    """Give every asyncio TLS connection made from now on a ``size``-byte read buffer.

    asyncio's ``SSLProtocol`` allocates ``max_size`` bytes per connection and has no
    per-server option; the class attribute is the one knob (CPython 3.11-3.13).
    """
    if size < 1024:
        raise ValueError("the TLS read buffer must be at least 1 KiB")
    asyncio.sslproto.SSLProtocol.max_size = size


def build_server_ssl_context(creds: ServerCredentials, *, client_ca_pem: bytes) -> ssl.SSLContext:
    """Server context: TLS >= 1.2, our certificate, optional client certs verified by the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    ctx.load_cert_chain(str(creds.cert_file), str(creds.key_file))
    ctx.load_verify_locations(cadata=client_ca_pem.decode("ascii"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@dataclass(frozen=True)
class CenterTLS:
    """The CA, the server credentials and the ways to serve with them.

    ``prepare`` creates the CA at first start under ``pki_dir/ca``, and either
    (re)issues the server certificate under ``pki_dir/tls`` for ``hosts`` or
    uses the operator's ``cert_file``/``key_file`` (``ca_file``: their anchor).
    """

    ca: CertificateAuthority
    creds: ServerCredentials

    @classmethod
    def prepare(
        cls,
        pki_dir: Path,
        *,
        trust_domain: str,
        hosts: list[str],
        cert_file: Path | None = None,
        key_file: Path | None = None,
        ca_file: Path | None = None,
    ) -> CenterTLS:
        ca = CertificateAuthority.load_or_create(pki_dir / "ca", trust_domain=trust_domain)
        if (cert_file is None) != (key_file is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if cert_file is not None and key_file is not None:
            creds = external_server_credentials(cert_file, key_file, ca_file)
        else:
            creds = ensure_server_certificate(ca, pki_dir / "tls", hosts=hosts)
        return cls(ca, creds)

    @property
    def pin(self) -> str:
        """What operators hand to agents with a join token."""
        return self.creds.pin

    def ssl_context(self) -> ssl.SSLContext:
        return build_server_ssl_context(self.creds, client_ca_pem=self.ca.cert_pem)

    def server(self, app: ASGIApp, *, host: str, port: int, **kwargs: Any) -> CenterServer:
        """A uvicorn server on our protocol class and context, self-test included
        (and the process's TLS read buffer limited to :data:`SSL_READ_BUFFER`)."""
        limit_ssl_read_buffer()
        config = uvicorn_config(app, host=host, port=port, ssl_context=self.ssl_context(), **kwargs)
        return CenterServer(config, self_test=make_self_test(self.ca, self.creds.anchor_pem))
