"""Transport security for the Center: one TLS listener, mTLS identity for agents.

Usage::

    tls = CenterTLS.prepare(data / "pki", trust_domain="prod.example", hosts=["10.0.0.5"])
    app.add_middleware(ClientIdentityMiddleware, trust_domain="prod.example",
                       authorizer=enrollment_service)
    server = tls.server(app, host="10.0.0.5", port=8443)   # protocol + context + self-test
    server.run()
    if server.self_test_error: sys.exit(1)

    @require_node_identity
    async def desired_state(request: Request) -> Response:
        node = request.state.node_id          # a verified, non-revoked NodeId

Invariants:

- TLS >= 1.2; ``verify_mode=CERT_OPTIONAL``: operators (bearer tokens) connect
  without a client certificate, agents with one. A certificate that is sent is
  verified against the issuing CA during the handshake; a bad one (unknown CA,
  expired, not yet valid, wrong EKU) ends the handshake.
- uvicorn does not put the peer certificate in the ASGI scope.
  :class:`TLSExtH11Protocol` (forced via ``http=``) fills
  ``scope["extensions"]["tls"]`` per the ASGI TLS extension from the connection's
  verified peer certificate, and nothing else does. :class:`CenterServer` proves
  that at start-up by calling itself with a client certificate, and refuses to
  serve if the identity is not visible to the app.
- Fail closed: :func:`node_identity` is ``None`` unless the middleware is installed,
  the extension is present, and the leaf is a current ``CA:false`` clientAuth
  certificate with exactly one URI SAN ``spiffe://<trust-domain>/node/<id>``.
  :func:`require_node_identity` answers 401 without an identity and 403 when the
  authorizer (unknown or revoked node, checked per request) refuses. A leaf's
  structure is judged once per certificate (cached by its PEM); its validity
  period on every request. A :class:`MemoryNodeAuthorizer` answers from memory
  when it can, so most agent requests need no worker thread for authorization.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import secrets
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.h11_impl import H11Protocol

from konorkestra.center.ca import NODE_ID_PATTERN, CertificateAuthority, ServerCredentials
from konorkestra.center.errors import ApiError, error_response
from konorkestra.center.graceful import GracefulServer
from konorkestra.model.types import NodeId

log = logging.getLogger(__name__)

SELF_TEST_PATH = "/v1/tls/self-test"
_SCOPE_KEY = "konorkestra.identity"
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
KEEP_ALIVE = 75
"""Seconds an idle keep-alive connection stays open (more than an agent's report heartbeat)."""


class TLSSelfTestFailed(Exception):
    """The running server does not expose verified client identities to the app."""


class NodeAuthError(ApiError):
    """A request is not from an acceptable node; ``status`` is 401 or 403.

    An :class:`~konorkestra.center.errors.ApiError`, so the app's exception
    handlers render it in the stable error shape when a route lets it propagate.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message, code=code)


class NodeAuthorizer(Protocol):
    """Decides, per request, whether a node may still talk to us (blocking: store I/O)."""

    def node_allowed(self, node_id: NodeId) -> bool: ...


@runtime_checkable
class MemoryNodeAuthorizer(NodeAuthorizer, Protocol):
    """An authorizer that can often answer from memory, without a worker thread.

    ``node_allowed_now`` returns ``None`` when only ``node_allowed`` can tell. A
    revocation must be reflected by the next call of either (see
    :mod:`konorkestra.center.nodecache`).
    """

    def node_allowed_now(self, node_id: NodeId) -> bool | None: ...


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


# --- uvicorn: put the verified peer certificate into the ASGI scope ----------------


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


# --- identity from the scope -------------------------------------------------------


@dataclass(frozen=True)
class _IdentityContext:
    trust_domain: str
    authorizer: NodeAuthorizer


class ClientIdentityMiddleware:
    """Tells :func:`node_identity` the trust domain and the per-request authorizer."""

    def __init__(self, app: ASGIApp, *, trust_domain: str, authorizer: NodeAuthorizer) -> None:
        self.app = app
        self.context = _IdentityContext(trust_domain, authorizer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[_SCOPE_KEY] = self.context
        await self.app(scope, receive, send)


def identity_from_certificate(
    cert: x509.Certificate, trust_domain: str, *, now: dt.datetime | None = None
) -> NodeId | None:
    """The node a verified client certificate names, or ``None`` if it is not a node leaf."""
    now = now or dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return None
    exts = cert.extensions
    try:
        if exts.get_extension_for_class(x509.BasicConstraints).value.ca:
            return None
        if (
            ExtendedKeyUsageOID.CLIENT_AUTH
            not in exts.get_extension_for_class(x509.ExtendedKeyUsage).value
        ):
            return None
        san = exts.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1:
        return None
    prefix = f"spiffe://{trust_domain}/node/"
    if not uris[0].startswith(prefix):
        return None
    node = uris[0][len(prefix) :]
    return NodeId(node) if NODE_ID_PATTERN.match(node) else None


def _peer_pem(request: Request) -> str | None:
    tls = (request.scope.get("extensions") or {}).get("tls")
    chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
    if not chain or not isinstance(chain[0], str):
        return None
    return chain[0]


def peer_certificate(request: Request) -> x509.Certificate | None:
    """The client's verified leaf certificate from the ASGI TLS extension, if any."""
    pem = _peer_pem(request)
    if pem is None:
        return None
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        return None


_FAR_PAST = dt.datetime.min.replace(tzinfo=dt.UTC)
_IDENTITIES: dict[tuple[str, str], tuple[NodeId | None, dt.datetime, dt.datetime]] = {}
_MAX_IDENTITIES = 50_000


def _cached_identity(pem: str, trust_domain: str, now: dt.datetime) -> NodeId | None:
    """:func:`identity_from_certificate` of a PEM leaf, parsed once per certificate.

    The certificate's structure is judged once; its validity period against
    ``now`` on every call.
    """
    key = (pem, trust_domain)
    known = _IDENTITIES.get(key)
    if known is None:
        try:
            cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
        except ValueError:
            return None
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        node = identity_from_certificate(cert, trust_domain, now=start)
        known = (node, start, end) if node is not None else (None, _FAR_PAST, _FAR_PAST)
        if len(_IDENTITIES) >= _MAX_IDENTITIES:
            _IDENTITIES.clear()
        _IDENTITIES[key] = known
    node, start, end = known
    return node if start <= now <= end else None


def identity_authorizer(request: Request) -> NodeAuthorizer | None:
    """The authorizer :class:`ClientIdentityMiddleware` was given, if it is installed."""
    ctx = request.scope.get(_SCOPE_KEY)
    return ctx.authorizer if isinstance(ctx, _IdentityContext) else None


def node_identity(request: Request) -> NodeId | None:
    """The verified NodeId of the request's client certificate, or ``None`` (fail closed)."""
    ctx = request.scope.get(_SCOPE_KEY)
    if not isinstance(ctx, _IdentityContext):
        return None
    pem = _peer_pem(request)
    return None if pem is None else _cached_identity(pem, ctx.trust_domain, dt.datetime.now(dt.UTC))


async def authenticate_node(request: Request) -> NodeId:
    """The request's node, verified and not revoked; :class:`NodeAuthError` otherwise."""
    node = node_identity(request)
    if node is None:
        raise NodeAuthError(
            401, "client_certificate_required", "this route needs a valid node client certificate"
        )
    ctx = request.scope[_SCOPE_KEY]
    authorizer = ctx.authorizer
    allowed = (
        authorizer.node_allowed_now(node) if isinstance(authorizer, MemoryNodeAuthorizer) else None
    )
    if allowed is None:
        allowed = await run_in_threadpool(authorizer.node_allowed, node)
    if not allowed:
        raise NodeAuthError(403, "node_revoked", f"node {node} is revoked or unknown")
    request.state.node_id = node
    return node


Endpoint = Callable[[Request], Awaitable[Response]]


def require_node_identity(endpoint: Endpoint) -> Endpoint:
    """Route decorator: 401 without a node certificate, 403 for a revoked/unknown node."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            await authenticate_node(request)
        except NodeAuthError as exc:
            return error_response(exc.status, exc.code, str(exc))
        return await endpoint(request)

    return guarded


# --- start-up self-test ------------------------------------------------------------


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


class CenterServer(GracefulServer):
    """uvicorn server that runs the TLS self-test once listening, and stops if it fails.

    A :class:`~konorkestra.center.graceful.GracefulServer`: ``before_shutdown`` hooks
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


# --- one-stop wiring for ``konorkestra center`` -----------------------------------------


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
        from konorkestra.center.ca import ensure_server_certificate, external_server_credentials

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
        """A uvicorn server on our protocol class and context, self-test included."""
        config = uvicorn_config(app, host=host, port=port, ssl_context=self.ssl_context(), **kwargs)
        return CenterServer(config, self_test=make_self_test(self.ca, self.creds.anchor_pem))
