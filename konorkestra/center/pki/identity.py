"""Client-certificate identity: which node a request comes from, and whether it may.

Usage::

    app.add_middleware(ClientIdentityMiddleware, trust_domain="prod.example",
                       authorizer=enrollment_service)

    @require_node_identity
    async def desired_state(request: Request) -> Response:
        node = request.state.node_id          # a verified, non-revoked NodeId

Invariants:

- The peer certificate is read only from ``scope["extensions"]["tls"]``, which
  only :class:`~konorkestra.center.pki.uvicornhook.TLSExtH11Protocol` fills
  (from the connection's verified peer certificate).
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

import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from konorkestra.center.app.errors import ApiError, error_response
from konorkestra.center.pki.certs import NODE_ID_PATTERN
from konorkestra.model.types import NodeId

_SCOPE_KEY = "konorkestra.identity"


class NodeAuthError(ApiError):
    """A request is not from an acceptable node; ``status`` is 401 or 403.

    An :class:`~konorkestra.center.app.errors.ApiError`, so the app's exception
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
    :mod:`konorkestra.center.nodes.cache`).
    """

    def node_allowed_now(self, node_id: NodeId) -> bool | None: ...


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
