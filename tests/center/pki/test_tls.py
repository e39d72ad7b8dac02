"""mTLS on a real uvicorn listener on loopback: who gets through, and as whom."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from konorkestra.center.pki.ca import CertificateAuthority
from konorkestra.center.pki.identity import (
    ClientIdentityMiddleware,
    identity_from_certificate,
    node_identity,
    require_node_identity,
)
from konorkestra.center.pki.selftest import make_self_test, tls_self_test_route
from konorkestra.center.pki.servercert import ServerCredentials, ensure_server_certificate
from konorkestra.center.pki.tlscontext import build_server_ssl_context
from konorkestra.center.pki.uvicornhook import CenterServer, TLSExtH11Protocol, uvicorn_config
from konorkestra.model.types import NodeId

TD = "test.konorkestra"
NODE = NodeId("aaaabbbbccccdddd")


@dataclass
class DenyList:
    revoked: set[str] = field(default_factory=set)

    def node_allowed(self, node_id: NodeId) -> bool:
        return node_id not in self.revoked


@require_node_identity
async def whoami(request: Request) -> Response:
    return JSONResponse({"node_id": request.state.node_id})


async def public(request: Request) -> Response:
    return JSONResponse({"node_id": node_identity(request)})


def make_app(deny: DenyList) -> Starlette:
    return Starlette(
        routes=[
            Route("/v1/whoami", whoami),
            Route("/public", public),
            tls_self_test_route(),
        ],
        middleware=[Middleware(ClientIdentityMiddleware, trust_domain=TD, authorizer=deny)],
    )


@dataclass
class Running:
    url: str
    server: CenterServer


@contextmanager
def serve(
    ca: CertificateAuthority,
    creds: ServerCredentials,
    deny: DenyList,
    protocol: type[Any] = TLSExtH11Protocol,
    host: str = "127.0.0.1",
) -> Iterator[Running]:
    ctx = build_server_ssl_context(creds, client_ca_pem=ca.cert_pem)
    config = uvicorn_config(make_app(deny), host=host, port=0, ssl_context=ctx, log_level="error")
    config.http = protocol
    server = CenterServer(config, self_test=make_self_test(ca, creds.anchor_pem))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (server.ready or server.self_test_error or not thread.is_alive()):
        assert time.monotonic() < deadline, "server did not start"
        thread.join(0.01)
    try:
        url = ""
        if server.ready:
            port = server.servers[0].sockets[0].getsockname()[1]
            url = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        yield Running(url, server)
    finally:
        server.should_exit = True
        thread.join(20)
        assert not thread.is_alive()


@dataclass
class PKI:
    dir: Path
    ca: CertificateAuthority
    ca_key: ec.EllipticCurvePrivateKey
    creds: ServerCredentials


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca", trust_domain=TD)
    key = serialization.load_pem_private_key((tmp_path / "ca" / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    creds = ensure_server_certificate(ca, tmp_path / "tls", hosts=["127.0.0.1", "::1"])
    return PKI(tmp_path, ca, key, creds)


def _cert(
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    *,
    node: str = NODE,
    eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
    ca: bool = False,
    start: dt.timedelta = dt.timedelta(hours=-1),
    end: dt.timedelta = dt.timedelta(hours=1),
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + start)
        .not_valid_after(now + end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"spiffe://{TD}/node/{node}")]
            ),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _client(pki: PKI, cert: x509.Certificate | None, key: ec.EllipticCurvePrivateKey | None):  # type: ignore[no-untyped-def]
    ctx = ssl.create_default_context(cadata=pki.creds.anchor_pem.decode())
    if cert is not None and key is not None:
        pem = pki.dir / f"client-{cert.serial_number}.pem"
        pem.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        ctx.load_cert_chain(str(pem))
    return httpx.Client(verify=ctx, timeout=10)


def _status(pki: PKI, url: str, cert: x509.Certificate | None, key: Any) -> int | str:
    try:
        with _client(pki, cert, key) as client:
            return client.get(url + "/v1/whoami").status_code
    except httpx.TransportError:
        return "refused"


def _valid(pki: PKI) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    issued = pki.ca.sign_node_csr(csr, NODE)
    return x509.load_pem_x509_certificate(issued.cert_pem), key


def test_valid_node_certificate_reaches_the_route_with_its_node_id(pki: PKI) -> None:
    deny = DenyList()
    cert, key = _valid(pki)
    with serve(pki.ca, pki.creds, deny) as running:
        assert running.server.self_test_error is None
        with _client(pki, cert, key) as client:
            resp = client.get(running.url + "/v1/whoami")
        assert resp.status_code == 200
        assert resp.json() == {"node_id": NODE}


def test_ipv6_loopback_listener(pki: PKI) -> None:
    cert, key = _valid(pki)
    with (
        serve(pki.ca, pki.creds, DenyList(), host="::1") as running,
        _client(pki, cert, key) as client,
    ):
        assert client.get(running.url + "/v1/whoami").json() == {"node_id": NODE}


def test_operator_without_client_cert_shares_the_listener_but_gets_401(pki: PKI) -> None:
    with serve(pki.ca, pki.creds, DenyList()) as running, _client(pki, None, None) as client:
        assert client.get(running.url + "/public").json() == {"node_id": None}
        resp = client.get(running.url + "/v1/whoami")
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "client_certificate_required"
        assert set(resp.json()["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize(
    "kind",
    ["expired", "not_yet_valid", "rogue_ca", "server_auth_only", "ca_true_leaf"],
)
def test_bad_client_certificates_are_refused(pki: PKI, kind: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_key, issuer = pki.ca_key, pki.ca.cert.subject
    kwargs: dict[str, Any] = {}
    if kind == "expired":
        kwargs = {"start": dt.timedelta(hours=-3), "end": dt.timedelta(hours=-1)}
    elif kind == "not_yet_valid":
        kwargs = {"start": dt.timedelta(hours=1), "end": dt.timedelta(hours=3)}
    elif kind == "rogue_ca":
        rogue = CertificateAuthority.load_or_create(pki.dir / "rogue", trust_domain=TD)
        rogue_key = serialization.load_pem_private_key(
            (pki.dir / "rogue" / "ca.key").read_bytes(), None
        )
        assert isinstance(rogue_key, ec.EllipticCurvePrivateKey)
        issuer_key, issuer = rogue_key, rogue.cert.subject
    elif kind == "server_auth_only":
        kwargs = {"eku": ExtendedKeyUsageOID.SERVER_AUTH}
    elif kind == "ca_true_leaf":
        kwargs = {"ca": True}
    cert = _cert(issuer_key, issuer, key, **kwargs)
    with serve(pki.ca, pki.creds, DenyList()) as running:
        # OpenSSL accepts a CA:true leaf at the handshake; our identity check does not.
        expected = 401 if kind == "ca_true_leaf" else "refused"
        assert _status(pki, running.url, cert, key) == expected
        # Control: the same listener accepts a good certificate.
        good_cert, good_key = _valid(pki)
        assert _status(pki, running.url, good_cert, good_key) == 200


def test_revocation_takes_effect_on_the_next_request_of_a_kept_alive_connection(
    pki: PKI,
) -> None:
    deny = DenyList()
    cert, key = _valid(pki)
    with serve(pki.ca, pki.creds, deny) as running, _client(pki, cert, key) as client:
        assert client.get(running.url + "/v1/whoami").status_code == 200
        deny.revoked.add(NODE)
        resp = client.get(running.url + "/v1/whoami")
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "node_revoked"


def test_server_without_the_tls_extension_fails_closed_and_fails_its_self_test(
    pki: PKI,
) -> None:
    cert, key = _valid(pki)
    with serve(pki.ca, pki.creds, DenyList(), protocol=H11Protocol) as running:
        assert running.server.self_test_error is not None
        assert "does not expose" in str(running.server.self_test_error)
    # Without the self-test stopping it, such a server would still answer 401, never 200.
    ctx = build_server_ssl_context(pki.creds, client_ca_pem=pki.ca.cert_pem)
    config = uvicorn_config(
        make_app(DenyList()), host="127.0.0.1", port=0, ssl_context=ctx, log_level="error"
    )
    config.http = H11Protocol
    server = CenterServer(config, self_test=None)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.ready:
        assert time.monotonic() < deadline
        thread.join(0.01)
    try:
        port = server.servers[0].sockets[0].getsockname()[1]
        assert _status(pki, f"https://127.0.0.1:{port}", cert, key) == 401
    finally:
        server.should_exit = True
        thread.join(20)


def test_identity_requires_our_trust_domain_and_a_single_node_uri(pki: PKI) -> None:
    cert, _ = _valid(pki)
    assert identity_from_certificate(cert, TD) == NODE
    assert identity_from_certificate(cert, "other.domain") is None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert identity_from_certificate(cert, TD, now=later) is None
