"""The Center's issuing CA for agent mTLS (never the release-signing keys).

Usage::

    ca = CertificateAuthority.load_or_create(data_dir / "ca", trust_domain="prod.example")
    print(ca.pin)                      # sha256:<hex of the CA's DER SubjectPublicKeyInfo>
    issued = ca.sign_node_csr(csr_pem, NodeId("3f2a9c0d1e7b4a55"))
    creds = ensure_server_certificate(ca, data_dir / "tls", hosts=["127.0.0.1", "::1"])

Invariants:

- The CA key is ECDSA P-256, created once at first start, written 0600 with an
  atomic, fsynced replace; it lives in its own directory, apart from any trust
  (release-signing) key.
- The pin is ``sha256:`` + hex SHA-256 of the CA certificate's DER
  SubjectPublicKeyInfo, the same value an agent computes from the CA it fetched.
- Node certificates are built only from what the Center decides: the CSR gives
  the public key and nothing else. Its subject and every requested extension are
  ignored; a CSR with a bad signature, a weak key, or asking for ``CA:true`` is
  refused with :class:`CSRRejected`.
- Every node certificate is a leaf: URI SAN ``spiffe://<trust-domain>/node/<id>``,
  EKU ``clientAuth`` only, ``basicConstraints CA:false`` (critical),
  ``keyUsage digitalSignature`` (critical), a random 159-bit serial, and a short
  lifetime (24 h by default). ``notBefore`` is back-dated by :data:`CLOCK_SKEW`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from konorkestra.model.types import NodeId

DEFAULT_NODE_LIFETIME = dt.timedelta(hours=24)
DEFAULT_SERVER_LIFETIME = dt.timedelta(days=90)
CA_LIFETIME = dt.timedelta(days=3650)
CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_CSR_BYTES = 16 * 1024
_ALLOWED_CURVES = (ec.SECP256R1, ec.SECP384R1)
_TRUST_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
NODE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class CAError(Exception):
    """The CA could not be loaded, created or used; the message says why."""


class CSRRejected(CAError):
    """A certificate signing request was refused; the message says why."""


def spki_pin_of_key(key: CertificatePublicKeyTypes) -> str:
    """``sha256:<hex>`` of a public key's DER SubjectPublicKeyInfo."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def spki_pin(cert: x509.Certificate) -> str:
    """``sha256:<hex>`` of the certificate's DER SubjectPublicKeyInfo."""
    return spki_pin_of_key(cert.public_key())


def spiffe_node_uri(trust_domain: str, node_id: NodeId) -> str:
    """The URI SAN naming ``node_id`` in ``trust_domain``."""
    return f"spiffe://{trust_domain}/node/{node_id}"


def write_private_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically: temp file, fsync, rename, fsync dir."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class IssuedCertificate:
    """A node certificate the CA has just signed."""

    node_id: NodeId
    cert_pem: bytes
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime


@dataclass(frozen=True)
class ServerCredentials:
    """The Center's TLS server certificate (chain) and key, and the anchor agents pin.

    ``anchor`` is the certificate the server chain ends at: the issuing CA for a
    Center-issued server certificate, the operator's CA for an external one. Agents
    fetch it from ``GET /v1/enroll/ca``, compare :attr:`pin`, and trust nothing else.
    """

    cert_file: Path
    key_file: Path
    anchor: x509.Certificate

    @property
    def pin(self) -> str:
        return spki_pin(self.anchor)

    @property
    def anchor_pem(self) -> bytes:
        return self.anchor.public_bytes(serialization.Encoding.PEM)


class CertificateAuthority:
    """An ECDSA P-256 issuing CA kept as ``ca.key`` (0600) and ``ca.crt`` in one directory."""

    def __init__(
        self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, trust_domain: str
    ) -> None:
        self._key = key
        self.cert = cert
        self.trust_domain = trust_domain

    @classmethod
    def load_or_create(
        cls, directory: Path, *, trust_domain: str, now: dt.datetime | None = None
    ) -> CertificateAuthority:
        """Load the CA from ``directory``, creating it on first start."""
        if not _TRUST_DOMAIN.match(trust_domain):
            raise CAError(f"invalid trust domain {trust_domain!r}: use a lowercase DNS-like name")
        key_path, cert_path = directory / "ca.key", directory / "ca.crt"
        if key_path.exists() != cert_path.exists():
            raise CAError(f"{directory}: ca.key and ca.crt must both exist or both be absent")
        if not key_path.exists():
            return cls._create(directory, trust_domain, now or _utcnow())
        if key_path.stat().st_mode & 0o077:
            raise CAError(f"{key_path}: permissions too open; expected 0600")
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except ValueError as exc:
            raise CAError(f"{directory}: unreadable CA material: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CAError(f"{key_path}: the CA key must be an EC key")
        if cert.public_key() != key.public_key():
            raise CAError(f"{directory}: ca.crt does not match ca.key")
        return cls(key, cert, trust_domain)

    @classmethod
    def _create(cls, directory: Path, trust_domain: str, now: dt.datetime) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Konorkestra"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"Konorkestra Center CA {trust_domain}"),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        write_private_file(directory / "ca.key", _key_pem(key))
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        write_private_file(directory / "ca.crt", cert_pem, 0o644)
        return cls(key, cert, trust_domain)

    @property
    def pin(self) -> str:
        """The CA pin agents are given with their join token."""
        return spki_pin(self.cert)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def _leaf(
        self,
        public_key: ec.EllipticCurvePublicKey,
        subject: x509.Name,
        san: list[x509.GeneralName],
        eku: x509.ObjectIdentifier,
        not_before: dt.datetime,
        not_after: dt.datetime,
        serial: int,
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )

    def sign_node_csr(
        self,
        csr_pem: bytes,
        node_id: NodeId,
        *,
        lifetime: dt.timedelta = DEFAULT_NODE_LIFETIME,
        now: dt.datetime | None = None,
    ) -> IssuedCertificate:
        """Issue a clientAuth leaf for ``node_id`` to the key in ``csr_pem``."""
        if not NODE_ID_PATTERN.match(node_id):
            raise CAError(f"invalid node id {node_id!r}")
        if lifetime <= dt.timedelta(0):
            raise CAError("certificate lifetime must be positive")
        public_key = check_csr(csr_pem)
        now = (now or _utcnow()).replace(microsecond=0)
        not_before, not_after = now - CLOCK_SKEW, now + lifetime
        serial = x509.random_serial_number()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)])
        san: list[x509.GeneralName] = [
            x509.UniformResourceIdentifier(spiffe_node_uri(self.trust_domain, node_id))
        ]
        cert = self._leaf(
            public_key,
            subject,
            san,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            not_before,
            not_after,
            serial,
        )
        pem = cert.public_bytes(serialization.Encoding.PEM)
        return IssuedCertificate(node_id, pem, serial, not_before, not_after)

    def issue_server_certificate(
        self,
        hosts: Iterable[str],
        *,
        lifetime: dt.timedelta = DEFAULT_SERVER_LIFETIME,
        now: dt.datetime | None = None,
    ) -> tuple[bytes, bytes]:
        """A fresh serverAuth certificate and key (both PEM) for ``hosts`` (IPs or DNS names)."""
        san = _server_sans(hosts)
        key = ec.generate_private_key(ec.SECP256R1())
        now = now or _utcnow()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Konorkestra Center")])
        cert = self._leaf(
            key.public_key(),
            subject,
            san,
            ExtendedKeyUsageOID.SERVER_AUTH,
            now - CLOCK_SKEW,
            now + lifetime,
            x509.random_serial_number(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _server_sans(hosts: Iterable[str]) -> list[x509.GeneralName]:
    san: list[x509.GeneralName] = []
    for host in dict.fromkeys(h.strip("[]") for h in hosts):
        try:
            san.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", host):
                raise CAError(f"invalid server host name {host!r}") from None
            san.append(x509.DNSName(host.lower()))
    if not san:
        raise CAError("the server certificate needs at least one host name or address")
    return san


def check_csr(csr_pem: bytes) -> ec.EllipticCurvePublicKey:
    """The CSR's public key, after proof of possession and policy checks."""
    if len(csr_pem) > MAX_CSR_BYTES:
        raise CSRRejected(f"CSR larger than {MAX_CSR_BYTES} bytes")
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise CSRRejected(f"CSR is not a valid PEM PKCS#10 request: {exc}") from exc
    try:
        valid = csr.is_signature_valid
    except (ValueError, InvalidSignature):
        valid = False
    if not valid:
        raise CSRRejected("CSR signature does not verify (no proof of key possession)")
    try:
        extensions = csr.extensions
    except ValueError as exc:
        raise CSRRejected(f"CSR extensions are malformed: {exc}") from exc
    for ext in extensions:
        if isinstance(ext.value, x509.BasicConstraints) and ext.value.ca:
            raise CSRRejected("CSR asks for CA:true; node certificates are never CAs")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, _ALLOWED_CURVES):
        raise CSRRejected("CSR key must be ECDSA P-256 or P-384")
    return key


def _server_cert_ok(
    cert: x509.Certificate, ca: CertificateAuthority, hosts: list[str], now: dt.datetime
) -> bool:
    if cert.issuer != ca.cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    if now > cert.not_valid_after_utc - lifetime / 3:
        return False
    try:
        have = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(have) == set(_server_sans(hosts))


def ensure_server_certificate(
    ca: CertificateAuthority,
    directory: Path,
    *,
    hosts: Iterable[str],
    lifetime: dt.timedelta = DEFAULT_SERVER_LIFETIME,
    now: dt.datetime | None = None,
) -> ServerCredentials:
    """The Center's own server certificate, (re)issued when absent, stale or for other hosts."""
    host_list = list(hosts)
    now = now or _utcnow()
    creds = ServerCredentials(directory / "server.crt", directory / "server.key", ca.cert)
    if creds.cert_file.exists() and creds.key_file.exists():
        try:
            cert = x509.load_pem_x509_certificate(creds.cert_file.read_bytes())
        except ValueError:
            cert = None
        if cert is not None and _server_cert_ok(cert, ca, host_list, now):
            return creds
    cert_pem, key_pem = ca.issue_server_certificate(host_list, lifetime=lifetime, now=now)
    write_private_file(creds.key_file, key_pem)
    write_private_file(creds.cert_file, cert_pem, 0o644)
    return creds


def external_server_credentials(
    cert_file: Path, key_file: Path, ca_file: Path | None = None
) -> ServerCredentials:
    """Operator-supplied server certificate chain and key, checked to match and to chain.

    The anchor is the certificate in ``ca_file`` if given, else the last certificate
    of the chain, which must then be self-signed.
    """
    try:
        chain = x509.load_pem_x509_certificates(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        anchors = x509.load_pem_x509_certificates(ca_file.read_bytes()) if ca_file else []
    except (OSError, ValueError) as exc:
        raise CAError(f"cannot use external TLS certificate {cert_file}: {exc}") from exc
    if not chain or chain[0].public_key() != key.public_key():
        raise CAError(f"{cert_file}: the first certificate does not match {key_file}")
    if ca_file is not None and len(anchors) != 1:
        raise CAError(f"{ca_file}: expected exactly one CA certificate")
    anchor = anchors[0] if anchors else chain[-1]
    top = chain[-1]
    try:
        if top is anchor or top == anchor:
            anchor.verify_directly_issued_by(anchor)
        else:
            top.verify_directly_issued_by(anchor)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CAError(
            f"{cert_file}: chain does not end at a self-signed anchor; pass the CA file"
        ) from exc
    return ServerCredentials(cert_file, key_file, anchor)
