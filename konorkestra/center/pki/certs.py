"""Certificate checks and names shared by the CA, enrollment and the TLS layer (pure).

Example::

    key = check_csr(csr_pem)            # the public key, or CSRRejected
    spki_pin_of_key(key)                # "sha256:<hex of the DER SubjectPublicKeyInfo>"
    spiffe_node_uri("prod.example", NodeId("3f2a9c0d1e7b4a55"))

Invariants:

- The pin is ``sha256:`` + hex SHA-256 of the DER SubjectPublicKeyInfo, the same
  value an agent computes from the CA it fetched.
- A CSR is accepted only with a valid signature (proof of key possession), an
  ECDSA P-256 or P-384 key, well-formed extensions, no ``CA:true`` request and
  at most :data:`MAX_CSR_BYTES` bytes; anything else is :class:`CSRRejected`.
- A node id matches :data:`NODE_ID_PATTERN`; server host names are IP addresses
  or DNS names (:func:`server_sans`).
- No I/O here: bytes and certificates in, values or errors out.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from konorkestra.model.types import NodeId

MAX_CSR_BYTES = 16 * 1024


_ALLOWED_CURVES = (ec.SECP256R1, ec.SECP384R1)


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


def server_sans(hosts: Iterable[str]) -> list[x509.GeneralName]:
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
