"""Keys: RFC 6962 key ids, ECDSA P-256 only, PEM (de)serialization from bytes (no disk)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from konorkestra.trust.keys import (
    KeyStorageError,
    Signer,
    keyid_of,
    private_key_pem,
    public_key_from_pem,
    public_key_pem,
    signer_from_pem,
)


def test_keyid_is_sha256_of_der_spki() -> None:
    signer = Signer.generate()
    der = signer.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert signer.keyid == hashlib.sha256(der).hexdigest() == keyid_of(signer.public_key)


def test_signature_is_ecdsa_p256_sha256() -> None:
    signer = Signer.generate()
    sig = signer.sign(b"message")
    signer.public_key.verify(sig, b"message", ec.ECDSA(hashes.SHA256()))


def test_only_p256_keys() -> None:
    with pytest.raises(KeyStorageError, match="only P-256"):
        Signer.from_private_key(ec.generate_private_key(ec.SECP384R1()))


@pytest.mark.parametrize("passphrase", [None, b"correct horse battery"])
def test_private_key_pem_round_trip(passphrase: bytes | None) -> None:
    signer = Signer.generate()
    pem = private_key_pem(signer.private_key, passphrase)
    assert (b"ENCRYPTED" in pem) == (passphrase is not None)
    assert signer_from_pem(pem, passphrase).keyid == signer.keyid


def test_wrong_passphrase_is_refused() -> None:
    pem = private_key_pem(Signer.generate().private_key, b"right")
    with pytest.raises(KeyStorageError, match="not a usable private key"):
        signer_from_pem(pem, b"wrong")


def test_non_p256_private_pem_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP384R1())
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyStorageError, match="only P-256"):
        signer_from_pem(pem)


def test_public_key_pem_round_trip() -> None:
    signer = Signer.generate()
    assert keyid_of(public_key_from_pem(public_key_pem(signer.public_key))) == signer.keyid
    with pytest.raises(KeyStorageError, match="not a PEM public key"):
        public_key_from_pem(b"not a key")
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(KeyStorageError, match="not an ECDSA P-256 public key"):
        public_key_from_pem(public_key_pem(p384))
