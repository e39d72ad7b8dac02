"""Key files: PEM private and public keys on disk, written atomically and durably.

Example::

    >>> import pathlib, tempfile
    >>> from konorkestra.keyfiles import load_signer, save_private_key
    >>> from konorkestra.trust import Signer
    >>> signer = Signer.generate()
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "release.pem"
    >>> save_private_key(path, signer.private_key, passphrase=b"correct horse")
    >>> load_signer(path, passphrase=b"correct horse").keyid == signer.keyid
    True
    >>> oct(path.stat().st_mode & 0o777)
    '0o600'

Invariants:

* Private keys are written as PKCS#8 PEM (encrypted when a passphrase is
  given) with exactly mode 0600, public keys with mode 0644, through
  :func:`konorkestra.durable.atomic_write`: a reader sees the old key or the
  new one, never a prefix, and the new one survives a power loss once written.
* :func:`load_signer` refuses a private key file readable or writable by group
  or others, and anything but a P-256 key.
* Every failure is a :class:`~konorkestra.trust.keys.KeyStorageError` whose
  message starts with the path.
* The key objects and their (de)serialization are :mod:`konorkestra.trust.keys`
  (pure); this module only adds the disk.
"""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from konorkestra.durable import atomic_write
from konorkestra.trust.keys import (
    KeyStorageError,
    Signer,
    private_key_pem,
    public_key_from_pem,
    public_key_pem,
    signer_from_pem,
)


def save_private_key(
    path: Path, private_key: ec.EllipticCurvePrivateKey, passphrase: bytes | None = None
) -> None:
    """Write ``private_key`` as PKCS#8 PEM, mode 0600, atomically and durably."""
    atomic_write(Path(path), private_key_pem(private_key, passphrase), 0o600)


def save_public_key(path: Path, public_key: ec.EllipticCurvePublicKey) -> None:
    """Write ``public_key`` as SubjectPublicKeyInfo PEM, mode 0644, atomically."""
    atomic_write(Path(path), public_key_pem(public_key), 0o644)


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
        return signer_from_pem(pem, passphrase)
    except KeyStorageError as exc:
        raise KeyStorageError(f"{path}: {exc}") from exc.__cause__


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """Read a PEM public key (P-256 only)."""
    path = Path(path)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise KeyStorageError(f"{path}: cannot read key: {exc.strerror}") from exc
    try:
        return public_key_from_pem(pem)
    except KeyStorageError as exc:
        raise KeyStorageError(f"{path}: {exc}") from exc.__cause__
