"""The Center's issuing CA for agent mTLS (never the release-signing keys).

Usage::

    ca = CertificateAuthority.load_or_create(data_dir / "ca", trust_domain="prod.example")
    print(ca.pin)                      # sha256:<hex of the CA's DER SubjectPublicKeyInfo>
    issued = ca.sign_node_csr(csr_pem, NodeId("3f2a9c0d1e7b4a55"))
    cert_pem, key_pem = ca.issue_server_certificate(["127.0.0.1", "::1"])
    # (the server certificate on disk: konorkestra.center.pki.servercert)

Invariants:

- The CA key is ECDSA P-256, created once at first start, written 0600 with an
  atomic, fsynced replace; it lives in its own directory, apart from any trust
  (release-signing) key.
- The pin is ``sha256:`` + hex SHA-256 of the CA certificate's DER
  SubjectPublicKeyInfo (:func:`~konorkestra.center.pki.certs.spki_pin`).
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
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from konorkestra.center.pki.certs import (
    NODE_ID_PATTERN,
    CAError,
    check_csr,
    server_sans,
    spiffe_node_uri,
    spki_pin,
)
from konorkestra.durable import atomic_write
from konorkestra.model.types import NodeId

DEFAULT_NODE_LIFETIME = dt.timedelta(hours=24)
DEFAULT_SERVER_LIFETIME = dt.timedelta(days=90)
CA_LIFETIME = dt.timedelta(days=3650)
CLOCK_SKEW = dt.timedelta(minutes=5)
_TRUST_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")


def write_private_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` (:func:`konorkestra.durable.atomic_write`), creating
    its directory private (0700) if it is missing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, data, mode)


def utcnow() -> dt.datetime:
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
            return cls._create(directory, trust_domain, now or utcnow())
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
        now = (now or utcnow()).replace(microsecond=0)
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
        san = server_sans(hosts)
        key = ec.generate_private_key(ec.SECP256R1())
        now = now or utcnow()
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
