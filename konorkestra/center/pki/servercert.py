"""The Center's TLS server certificate: issued by its own CA, or the operator's.

Example::

    creds = ensure_server_certificate(ca, data_dir / "tls", hosts=["127.0.0.1", "::1"])
    creds = external_server_credentials(cert_file, key_file, ca_file)   # --tls-cert/--tls-key
    creds.pin                      # what agents compare before they send a join token

Invariants:

- A Center-issued server certificate is reissued when it is absent, unreadable,
  not issued by the current CA, past two thirds of its lifetime, or for other
  hosts; otherwise the one on disk is kept. Key and certificate are written
  atomically (key 0600).
- An external chain must start with the certificate of the given key and end
  at a self-signed anchor (``ca_file``, or the chain's last certificate).
- The anchor is what agents pin (:attr:`ServerCredentials.pin`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from konorkestra.center.pki.ca import (
    DEFAULT_SERVER_LIFETIME,
    CertificateAuthority,
    utcnow,
    write_private_file,
)
from konorkestra.center.pki.certs import CAError, server_sans, spki_pin


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
    return set(have) == set(server_sans(hosts))


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
    now = now or utcnow()
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
