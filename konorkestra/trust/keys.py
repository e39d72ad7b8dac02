"""Signing keys: generation, key ids, PEM storage and the :class:`Signer`.

Example::

    >>> import pathlib, tempfile
    >>> from konorkestra.trust.keys import Signer, save_private_key, load_signer
    >>> signer = Signer.generate()
    >>> len(signer.keyid)
    64
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "release.pem"
    >>> save_private_key(path, signer.private_key, passphrase=b"correct horse")
    >>> load_signer(path, passphrase=b"correct horse").keyid == signer.keyid
    True
    >>> oct(path.stat().st_mode & 0o777)
    '0o600'

Invariants:

* Keys are ECDSA P-256; signatures are ECDSA with SHA-256, DER encoded.
* A key id is the RFC 6962 style id: lowercase hex SHA-256 of the DER
  SubjectPublicKeyInfo. It is derived, never trusted from input.
* Private keys are written as PKCS#8 PEM (encrypted when a passphrase is given)
  with mode 0600, atomically: a new temp file in the same directory, fsync,
  ``rename(2)``, fsync of the directory. A reader sees the old key or the new
  one, never a prefix.
* :func:`load_signer` refuses a private key file readable or writable by group
  or others, and anything but a P-256 key.
* These helpers are the only disk access in ``konorkestra.trust``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import NewType, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

KeyId = NewType("KeyId", str)
"""Lowercase hex SHA-256 of a key's DER SubjectPublicKeyInfo."""

_ECDSA = ec.ECDSA(hashes.SHA256())


class KeyStorageError(Exception):
    """A key file cannot be written or read safely; the message says why."""


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


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    directory = path.parent
    tmp = directory / f".tmp-{path.name}-{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask must not widen or narrow what we asked for
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_private_key(
    path: Path, private_key: ec.EllipticCurvePrivateKey, passphrase: bytes | None = None
) -> None:
    """Write ``private_key`` as PKCS#8 PEM, mode 0600, atomically and durably."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    _atomic_write(Path(path), pem, 0o600)


def save_public_key(path: Path, public_key: ec.EllipticCurvePublicKey) -> None:
    """Write ``public_key`` as SubjectPublicKeyInfo PEM, mode 0644, atomically."""
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _atomic_write(Path(path), pem, 0o644)


def load_signer(path: Path, passphrase: bytes | None = None) -> Signer:
    """Read a private key written by :func:`save_private_key`."""
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeyStorageError(f"{path}: mode {mode:04o} lets others read the key; chmod 600 it")
        pem = path.read_bytes()
    except OSError as exc:
        raise KeyStorageError(f"{path}: cannot read key: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase or None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyStorageError(f"{path}: not a usable private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyStorageError(f"{path}: not an ECDSA key")
    return Signer.from_private_key(key)


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """Read a PEM public key (P-256 only)."""
    path = Path(path)
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise KeyStorageError(f"{path}: cannot read key: {exc.strerror}") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyStorageError(f"{path}: not a PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyStorageError(f"{path}: not an ECDSA P-256 public key")
    return key
