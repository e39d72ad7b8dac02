"""The Center's small TLS read buffer: set where its server is made, bytes and identity intact."""

from __future__ import annotations

import asyncio.sslproto
import datetime as dt
import os
import ssl
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from konorkestra.center.pki.identity import ClientIdentityMiddleware, require_node_identity
from konorkestra.center.pki.selftest import tls_self_test_route
from konorkestra.center.pki.tlscontext import SSL_READ_BUFFER, CenterTLS, limit_ssl_read_buffer
from konorkestra.model.types import NodeId

TD = "buffer.konorkestra"
ASYNCIO_DEFAULT = 256 * 1024


class AllowAll:
    def node_allowed(self, node_id: NodeId) -> bool:
        return True


@require_node_identity
async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"node_id": request.state.node_id, "size": len(body), "sum": sum(body)})


def test_the_limit_is_checked() -> None:
    with pytest.raises(ValueError):
        limit_ssl_read_buffer(512)


def test_the_centers_server_reads_big_bodies_through_a_small_buffer_and_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asyncio.sslproto.SSLProtocol, "max_size", ASYNCIO_DEFAULT)  # undone after
    tls = CenterTLS.prepare(tmp_path / "pki", trust_domain=TD, hosts=["127.0.0.1"])
    app = Starlette(
        routes=[Route("/echo", echo, methods=["POST"]), tls_self_test_route()],
        middleware=[Middleware(ClientIdentityMiddleware, trust_domain=TD, authorizer=AllowAll())],
    )
    server = tls.server(app, host="127.0.0.1", port=0, log_level="error")
    assert asyncio.sslproto.SSLProtocol.max_size == SSL_READ_BUFFER < ASYNCIO_DEFAULT

    async def main() -> None:
        serving = asyncio.create_task(server.serve())
        deadline = time.monotonic() + 20
        while not (server.ready or server.self_test_error or serving.done()):
            assert time.monotonic() < deadline, "server did not start"
            await asyncio.sleep(0.01)
        try:
            assert server.ready, server.self_test_error  # the self-test passed through it too
            await asyncio.to_thread(clients, server.servers[0].sockets[0].getsockname()[1])
        finally:
            server.should_exit = True
            await serving

    def clients(port: int) -> None:
        url = f"https://127.0.0.1:{port}"
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
        csr_pem = csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        issued = tls.ca.sign_node_csr(csr_pem, NodeId("node-1"), lifetime=dt.timedelta(hours=1))
        pem = tmp_path / "node.pem"
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())  # fmt: skip
        pem.write_bytes(issued.cert_pem + key_pem)
        anchor = ssl.create_default_context(cadata=tls.creds.anchor_pem.decode("ascii"))
        signed_in = ssl.create_default_context(cadata=tls.creds.anchor_pem.decode("ascii"))
        signed_in.load_cert_chain(str(pem))
        body = os.urandom(3 * 1024 * 1024 + 17)  # many buffers' worth, not a whole number
        with httpx.Client(verify=signed_in, timeout=30) as node:
            answer = node.post(url + "/echo", content=body).json()
        assert answer == {"node_id": "node-1", "size": len(body), "sum": sum(body)}
        with httpx.Client(verify=anchor, timeout=30) as anonymous:
            assert anonymous.post(url + "/echo", content=body).status_code == 401

    asyncio.run(main())
