"""Signing keys: generation, key ids, PEM (de)serialization and the :class:`Signer`.

Example::

    >>> from konorkestra.trust.keys import Signer, private_key_pem, signer_from_pem
    >>> signer = Signer.generate()
    >>> len(signer.keyid)
    64
    >>> pem = private_key_pem(signer.private_key, passphrase=b"correct horse")
    >>> signer_from_pem(pem, passphrase=b"correct horse").keyid == signer.keyid
    True

Invariants:

* Keys are ECDSA P-256; signatures are ECDSA with SHA-256, DER encoded.
* A key id is the RFC 6962 style id: lowercase hex SHA-256 of the DER
  SubjectPublicKeyInfo. It is derived, never trusted from input.
* Private keys serialize as PKCS#8 PEM (encrypted when a passphrase is given),
  public keys as SubjectPublicKeyInfo PEM; parsing refuses anything but a
  P-256 key with :class:`KeyStorageError`.
* Pure: bytes in, keys out. Key *files* (mode 0600, atomic durable writes,
  refusal of loose permissions) are :mod:`konorkestra.keyfiles`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NewType, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

KeyId = NewType("KeyId", str)
"""Lowercase hex SHA-256 of a key's DER SubjectPublicKeyInfo."""

_ECDSA = ec.ECDSA(hashes.SHA256())


class KeyStorageError(Exception):
    """A key (or key file) is not usable or not safely stored; the message says why."""


def public_der(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """DER SubjectPublicKeyInfo of ``public_key``."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def keyid_of(public_key: ec.EllipticCurvePublicKey) -> KeyId:
    """RFC 6962 key id of ``public_key``."""
    return KeyId(hashlib.sha256(public_der(public_key)).hexdigest())


class SigningKey(Protocol):
    """What the signing functions need; an HSM-backed signer can satisfy it too."""

    @property
    def keyid(self) -> KeyId: ...

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA P-256/SHA-256 signature over ``data``."""
        ...


@dataclass(frozen=True)
class Signer:
    """An in-memory ECDSA P-256 private key and its key id."""

    private_key: ec.EllipticCurvePrivateKey
    keyid: KeyId
    public_key: ec.EllipticCurvePublicKey

    @classmethod
    def from_private_key(cls, private_key: ec.EllipticCurvePrivateKey) -> Signer:
        """Wrap an existing P-256 key."""
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise KeyStorageError(f"key is on {private_key.curve.name}; only P-256 is accepted")
        public_key = private_key.public_key()
        return cls(private_key, keyid_of(public_key), public_key)

    @classmethod
    def generate(cls) -> Signer:
        """A fresh random P-256 key."""
        return cls.from_private_key(ec.generate_private_key(ec.SECP256R1()))

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA signature over ``data`` (SHA-256)."""
        return self.private_key.sign(data, _ECDSA)


def private_key_pem(
    private_key: ec.EllipticCurvePrivateKey, passphrase: bytes | None = None
) -> bytes:
    """``private_key`` as PKCS#8 PEM, encrypted with ``passphrase`` when one is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def public_key_pem(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """``public_key`` as SubjectPublicKeyInfo PEM."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def signer_from_pem(pem: bytes, passphrase: bytes | None = None) -> Signer:
    """The :class:`Signer` of a PEM private key (as :func:`private_key_pem` writes it)."""
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase or None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyStorageError(f"not a usable private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyStorageError("not an ECDSA key")
    return Signer.from_private_key(key)


def public_key_from_pem(pem: bytes) -> ec.EllipticCurvePublicKey:
    """The P-256 public key of a SubjectPublicKeyInfo PEM."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyStorageError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyStorageError("not an ECDSA P-256 public key")
    return key
