"""The Center's issuing CA: creation, pinning, CSR policy, server certificates."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from konorkestra.center.pki.ca import CertificateAuthority
from konorkestra.center.pki.certs import CAError, CSRRejected, spki_pin
from konorkestra.center.pki.servercert import ensure_server_certificate, external_server_credentials
from konorkestra.model.types import NodeId

TD = "test.konorkestra"
NODE = NodeId("0123456789abcdef")


def _csr(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    *,
    ca: bool = False,
    extra: bool = False,
) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")])
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    if extra:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("center.example"),
                    x509.UniformResourceIdentifier(f"spiffe://{TD}/node/other"),
                ]
            ),
            False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path / "ca", trust_domain=TD)


def test_ca_is_created_once_with_private_key_0600(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path / "ca", trust_domain=TD)
    mode = stat.S_IMODE((tmp_path / "ca" / "ca.key").stat().st_mode)
    assert mode == 0o600
    again = CertificateAuthority.load_or_create(tmp_path / "ca", trust_domain=TD)
    assert again.pin == first.pin
    bc = first.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    assert isinstance(first.cert.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(first.cert.public_key().curve, ec.SECP256R1)


def test_ca_refuses_a_world_readable_key(tmp_path: Path) -> None:
    CertificateAuthority.load_or_create(tmp_path / "ca", trust_domain=TD)
    (tmp_path / "ca" / "ca.key").chmod(0o644)
    with pytest.raises(CAError, match="permissions too open"):
        CertificateAuthority.load_or_create(tmp_path / "ca", trust_domain=TD)


def test_pin_is_sha256_of_der_spki(ca: CertificateAuthority) -> None:
    spki = ca.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert ca.pin == "sha256:" + hashlib.sha256(spki).hexdigest()
    assert ca.pin == spki_pin(ca.cert)


def test_issued_node_certificate_has_only_our_extensions(ca: CertificateAuthority) -> None:
    now = dt.datetime.now(dt.UTC)
    issued = ca.sign_node_csr(_csr(extra=True), NODE, now=now)
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    cert.verify_directly_issued_by(ca.cert)
    exts = {type(e.value) for e in cert.extensions}
    assert exts == {
        x509.BasicConstraints,
        x509.KeyUsage,
        x509.ExtendedKeyUsage,
        x509.SubjectAlternativeName,
        x509.SubjectKeyIdentifier,
        x509.AuthorityKeyIdentifier,
    }
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [x509.UniformResourceIdentifier(f"spiffe://{TD}/node/{NODE}")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == NODE
    assert cert.not_valid_after_utc - now.replace(microsecond=0) == dt.timedelta(hours=24)
    assert (issued.not_before, issued.not_after) == (
        cert.not_valid_before_utc,
        cert.not_valid_after_utc,
    )
    assert issued.serial == cert.serial_number and issued.serial.bit_length() > 64


def test_lifetime_is_configurable_and_serials_are_random(ca: CertificateAuthority) -> None:
    a = ca.sign_node_csr(_csr(), NODE, lifetime=dt.timedelta(hours=1))
    b = ca.sign_node_csr(_csr(), NODE, lifetime=dt.timedelta(hours=1))
    assert a.serial != b.serial
    assert a.not_after - a.not_before == dt.timedelta(hours=1, minutes=5)


def test_csr_asking_for_ca_true_is_refused(ca: CertificateAuthority) -> None:
    with pytest.raises(CSRRejected, match="CA:true"):
        ca.sign_node_csr(_csr(ca=True), NODE)


def test_csr_with_bad_signature_is_refused(ca: CertificateAuthority) -> None:
    csr = x509.load_pem_x509_csr(_csr())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature BIT STRING
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CSRRejected, match="signature"):
        ca.sign_node_csr(tampered, NODE)


def test_csr_with_rsa_key_or_garbage_is_refused(ca: CertificateAuthority) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(CSRRejected, match="P-256"):
        ca.sign_node_csr(_csr(rsa_key), NODE)
    with pytest.raises(CSRRejected, match="PEM"):
        ca.sign_node_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", NODE)
    with pytest.raises(CSRRejected, match="larger"):
        ca.sign_node_csr(b"x" * 20_000, NODE)


def test_invalid_node_id_is_refused(ca: CertificateAuthority) -> None:
    with pytest.raises(CAError, match="node id"):
        ca.sign_node_csr(_csr(), NodeId("../other"))


def test_server_certificate_for_ip_and_dns_names(ca: CertificateAuthority, tmp_path: Path) -> None:
    creds = ensure_server_certificate(ca, tmp_path / "tls", hosts=["127.0.0.1", "::1", "center"])
    cert = x509.load_pem_x509_certificate(creds.cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert san.get_values_for_type(x509.DNSName) == ["center"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert stat.S_IMODE(creds.key_file.stat().st_mode) == 0o600
    assert creds.pin == ca.pin
    # Unchanged hosts: kept. New hosts: reissued.
    same = ensure_server_certificate(ca, tmp_path / "tls", hosts=["center", "::1", "127.0.0.1"])
    assert same.cert_file.read_bytes() == creds.cert_file.read_bytes()
    ensure_server_certificate(ca, tmp_path / "tls", hosts=["127.0.0.1"])
    reissued = x509.load_pem_x509_certificate(creds.cert_file.read_bytes())
    assert reissued.serial_number != cert.serial_number


def test_server_certificate_is_renewed_late_in_life(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    creds = ensure_server_certificate(ca, tmp_path / "tls", hosts=["127.0.0.1"])
    before = creds.cert_file.read_bytes()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=70)
    ensure_server_certificate(ca, tmp_path / "tls", hosts=["127.0.0.1"], now=later)
    assert creds.cert_file.read_bytes() != before


def test_external_server_certificate(tmp_path: Path) -> None:
    other = CertificateAuthority.load_or_create(tmp_path / "other", trust_domain="ext.example")
    cert_pem, key_pem = other.issue_server_certificate(["center.example"])
    (tmp_path / "s.crt").write_bytes(cert_pem)
    (tmp_path / "s.key").write_bytes(key_pem)
    (tmp_path / "ca.crt").write_bytes(other.cert_pem)
    creds = external_server_credentials(tmp_path / "s.crt", tmp_path / "s.key", tmp_path / "ca.crt")
    assert creds.pin == other.pin
    with pytest.raises(CAError, match="self-signed anchor"):
        external_server_credentials(tmp_path / "s.crt", tmp_path / "s.key")
    _, wrong_key = other.issue_server_certificate(["center.example"])
    (tmp_path / "w.key").write_bytes(wrong_key)
    with pytest.raises(CAError, match="does not match"):
        external_server_credentials(tmp_path / "s.crt", tmp_path / "w.key")
