"""The agent's identity: enrollment with a pinned Center, mTLS credentials, renewal.

Usage::

    ident = join("https://10.0.0.5:8443", token="ab12cd34.s3cr3t...",
                 ca_pin="sha256:9f86d0...", data_dir=Path("/var/lib/konorkestra"))
    client = httpx.Client(base_url=ident.center_url, verify=ident.ssl_context())
    if ident.renewal_due():
        ident = renew(ident)

Invariants:

- The node key is generated here and never leaves the node; it is written only
  together with its certificate, in one 0600 file (``identity/node.pem``)
  replaced atomically (temp file, fsync, rename, fsync dir), so the key and
  certificate on disk always match.
- No trust on first use: the Center's anchor certificate is fetched over an
  unverified connection, and its DER SubjectPublicKeyInfo SHA-256 must equal the
  operator's ``--ca-pin`` before anything else is sent. The join token travels
  only on a later connection verified against that anchor (hostname checked), and
  every later request trusts that anchor alone.
- ``identity/node.json`` is written last: its presence means "enrolled".
- The trust root is stored byte for byte as the Center sent it (it is signed).
- Renewal starts at two thirds of the certificate's lifetime, uses a fresh key,
  and authenticates with the current certificate over mTLS. An expired
  certificate cannot renew (:class:`RenewalImpossible`): the node must re-join.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from konorkestra.agent.store.fsutil import ensure_dir
from konorkestra.durable import atomic_write
from konorkestra.model.types import GroupName, NodeId

MAX_RESPONSE_BYTES = 1024 * 1024
RENEW_AT_FRACTION = 2 / 3


class IdentityError(Exception):
    """Enrollment or renewal failed; the message says why and what to do."""


class PinMismatch(IdentityError):
    """The Center's CA does not match the pin: nothing was sent."""


class CenterUnreachable(IdentityError):
    """Transport failure talking to the Center (connection, TLS, timeout)."""


class CenterRefused(IdentityError):
    """The Center answered with an error (``status``, ``code``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"center refused ({status} {code}): {message}")
        self.status, self.code = status, code


class RenewalImpossible(IdentityError):
    """The certificate has expired; only a new join can restore the identity."""


@dataclass(frozen=True)
class IdentityPaths:
    """Where the identity lives under the agent's data directory."""

    root: Path

    @classmethod
    def under(cls, data_dir: Path) -> IdentityPaths:
        return cls(data_dir / "identity")

    @property
    def credentials(self) -> Path:
        return self.root / "node.pem"

    @property
    def anchor(self) -> Path:
        return self.root / "center-ca.crt"

    @property
    def trust_root(self) -> Path:
        return self.root / "trust-root.json"

    @property
    def node(self) -> Path:
        return self.root / "node.json"


@dataclass(frozen=True)
class AgentIdentity:
    """An enrolled node: who it is, where its Center is, what it may subscribe to."""

    node_id: NodeId
    name: str
    center_url: str
    groups: tuple[GroupName, ...]
    labels: Mapping[str, str]
    certificate: x509.Certificate
    paths: IdentityPaths

    def ssl_context(self) -> ssl.SSLContext:
        """mTLS client context: our certificate, the pinned anchor as the only trust root."""
        ctx = pinned_context(self.paths.anchor.read_bytes())
        ctx.load_cert_chain(str(self.paths.credentials))
        return ctx

    def renewal_due(self, now: dt.datetime | None = None) -> bool:
        """True from two thirds of the certificate's lifetime onwards."""
        cert = self.certificate
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        return (now or _utcnow()) >= start + (end - start) * RENEW_AT_FRACTION

    def expired(self, now: dt.datetime | None = None) -> bool:
        return (now or _utcnow()) >= self.certificate.not_valid_after_utc


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def spki_pin(cert: x509.Certificate) -> str:
    """``sha256:<hex>`` of the certificate's DER SubjectPublicKeyInfo (as the Center prints it)."""
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def pinned_context(anchor_pem: bytes) -> ssl.SSLContext:
    """Client context trusting only ``anchor_pem``, TLS >= 1.2, hostname checked."""
    ctx = ssl.create_default_context(cadata=anchor_pem.decode("ascii"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def build_csr(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A PKCS#10 request proving possession of ``key``; the Center ignores its subject."""
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _credentials_pem(cert_pem: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    return cert_pem + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _error(resp: httpx.Response) -> CenterRefused:
    try:
        err = resp.json()["error"]
        return CenterRefused(resp.status_code, str(err["code"]), str(err["message"]))
    except (ValueError, KeyError, TypeError):
        return CenterRefused(resp.status_code, "http_error", resp.text[:200])


def _request(
    method: str,
    url: str,
    verify: ssl.SSLContext,
    *,
    body: Mapping[str, Any] | None = None,
    timeout: float,
) -> bytes:
    try:
        with (
            httpx.Client(verify=verify, timeout=timeout) as client,
            client.stream(method, url, json=body) as resp,
        ):
            data = b""
            for chunk in resp.iter_bytes():
                data += chunk
                if len(data) > MAX_RESPONSE_BYTES:
                    raise IdentityError(f"{url}: response larger than {MAX_RESPONSE_BYTES} bytes")
            if resp.status_code != 200:
                raise _error(httpx.Response(resp.status_code, content=data))
            return data
    except httpx.HTTPError as exc:
        raise CenterUnreachable(f"cannot reach {url}: {exc}") from exc


def fetch_pinned_anchor(center_url: str, ca_pin: str, *, timeout: float = 15.0) -> bytes:
    """The Center's anchor (PEM), fetched untrusted and accepted only if it matches ``ca_pin``."""
    untrusted = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    untrusted.minimum_version = ssl.TLSVersion.TLSv1_2
    untrusted.check_hostname = False
    untrusted.verify_mode = ssl.CERT_NONE
    pem = _request("GET", center_url.rstrip("/") + "/v1/enroll/ca", untrusted, timeout=timeout)
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise PinMismatch(f"{center_url} did not return a CA certificate: {exc}") from exc
    if len(certs) != 1:
        raise PinMismatch(f"{center_url} returned {len(certs)} certificates, expected one")
    got = spki_pin(certs[0])
    if not hmac.compare_digest(got.encode(), ca_pin.strip().lower().encode("utf-8")):
        raise PinMismatch(
            f"Center CA pin mismatch: expected {ca_pin}, got {got}; refusing to send the token"
        )
    return certs[0].public_bytes(serialization.Encoding.PEM)


def _check_issued(cert_pem: bytes, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise IdentityError(f"the Center returned an unreadable certificate: {exc}") from exc
    if cert.public_key() != key.public_key():
        raise IdentityError("the Center returned a certificate for a different key")
    return cert


def join(
    center_url: str,
    token: str,
    ca_pin: str,
    data_dir: Path,
    *,
    name: str | None = None,
    timeout: float = 15.0,
) -> AgentIdentity:
    """Enroll this node: pin check, CSR + token, then store credentials, anchor and scope."""
    paths = IdentityPaths.under(data_dir)
    if paths.node.exists():
        raise IdentityError(f"{paths.root} already holds an identity; remove it to re-join")
    center_url = center_url.rstrip("/")
    anchor_pem = fetch_pinned_anchor(center_url, ca_pin, timeout=timeout)
    key = ec.generate_private_key(ec.SECP256R1())
    body: dict[str, Any] = {"token": token, "csr": build_csr(key).decode("ascii")}
    if name is not None:
        body["name"] = name
    raw = _request(
        "POST", center_url + "/v1/enroll", pinned_context(anchor_pem), body=body, timeout=timeout
    )
    try:
        reply = json.loads(raw)
        cert_pem = reply["certificate"].encode("ascii")
        node_id, node_name = NodeId(reply["node_id"]), str(reply["name"])
        scope = reply["scope"]
        groups = tuple(GroupName(g) for g in scope["groups"])
        labels = {str(k): str(v) for k, v in scope.get("labels", {}).items()}
        trust_root = reply["trust_root"].encode("utf-8")
        json.loads(trust_root)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IdentityError(f"malformed enrollment reply from the Center: {exc!r}") from exc
    cert = _check_issued(cert_pem, key)
    if not data_dir.exists():
        ensure_dir(data_dir)
        data_dir.chmod(0o700)  # `agent run` refuses a data dir others can read
    ensure_dir(paths.root)
    paths.root.chmod(0o700)
    atomic_write(paths.credentials, _credentials_pem(cert_pem, key), 0o600)
    atomic_write(paths.anchor, anchor_pem, 0o644)
    atomic_write(paths.trust_root, trust_root, 0o644)
    node_doc = {
        "node_id": node_id,
        "name": node_name,
        "center_url": center_url,
        "ca_pin": spki_pin(x509.load_pem_x509_certificate(anchor_pem)),
        "groups": list(groups),
        "labels": labels,
    }
    atomic_write(paths.node, json.dumps(node_doc, indent=2, sort_keys=True).encode(), 0o644)
    return AgentIdentity(node_id, node_name, center_url, groups, labels, cert, paths)


def load_identity(data_dir: Path) -> AgentIdentity:
    """The stored identity; :class:`IdentityError` if the node never joined or files are bad."""
    paths = IdentityPaths.under(data_dir)
    try:
        doc = json.loads(paths.node.read_text())
        cert = x509.load_pem_x509_certificate(paths.credentials.read_bytes())
    except FileNotFoundError as exc:
        raise IdentityError(f"{data_dir}: not enrolled; run `konorkestra agent join`") from exc
    except (OSError, ValueError) as exc:
        raise IdentityError(f"{paths.root}: unreadable identity: {exc}") from exc
    if paths.credentials.stat().st_mode & 0o077:
        raise IdentityError(f"{paths.credentials}: permissions too open; expected 0600")
    return AgentIdentity(
        NodeId(doc["node_id"]),
        doc["name"],
        doc["center_url"],
        tuple(GroupName(g) for g in doc["groups"]),
        dict(doc["labels"]),
        cert,
        paths,
    )


def renew(
    identity: AgentIdentity, *, now: dt.datetime | None = None, timeout: float = 15.0
) -> AgentIdentity:
    """Replace the certificate and key, authenticating with the current ones over mTLS."""
    if identity.expired(now):
        expired_at = identity.certificate.not_valid_after_utc.isoformat()
        raise RenewalImpossible(
            f"node certificate expired at {expired_at}; re-join with a new join token"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    raw = _request(
        "POST",
        identity.center_url + "/v1/nodes/self/renew",
        identity.ssl_context(),
        body={"csr": build_csr(key).decode("ascii")},
        timeout=timeout,
    )
    try:
        cert_pem = json.loads(raw)["certificate"].encode("ascii")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IdentityError(f"malformed renewal reply from the Center: {exc!r}") from exc
    cert = _check_issued(cert_pem, key)
    atomic_write(identity.paths.credentials, _credentials_pem(cert_pem, key), 0o600)
    return AgentIdentity(
        identity.node_id,
        identity.name,
        identity.center_url,
        identity.groups,
        identity.labels,
        cert,
        identity.paths,
    )
