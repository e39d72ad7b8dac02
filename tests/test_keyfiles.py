"""Key files: PEM storage (0600, atomic, passphrase), loose files refused, errors name the path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from konorkestra.keyfiles import load_public_key, load_signer, save_private_key, save_public_key
from konorkestra.trust.keys import KeyStorageError, Signer, keyid_of


@pytest.mark.parametrize("passphrase", [None, b"correct horse battery"])
def test_private_key_round_trip_mode_0600(tmp_path: Path, passphrase: bytes | None) -> None:
    signer = Signer.generate()
    path = tmp_path / "release.pem"
    save_private_key(path, signer.private_key, passphrase)
    assert path.stat().st_mode & 0o777 == 0o600
    assert (b"ENCRYPTED" in path.read_bytes()) == (passphrase is not None)
    assert load_signer(path, passphrase).keyid == signer.keyid
    assert [p.name for p in tmp_path.iterdir()] == ["release.pem"]  # no temp file left


def test_private_key_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        save_private_key(tmp_path / "k.pem", Signer.generate().private_key)
    finally:
        os.umask(old)
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600


def test_overwrite_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    first, second = Signer.generate(), Signer.generate()
    save_private_key(path, first.private_key)
    save_private_key(path, second.private_key)
    assert load_signer(path).keyid == second.keyid


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    save_private_key(path, Signer.generate().private_key, b"right")
    with pytest.raises(KeyStorageError, match=r"k\.pem: not a usable private key"):
        load_signer(path, b"wrong")


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    save_private_key(path, Signer.generate().private_key)
    os.chmod(path, 0o644)
    with pytest.raises(KeyStorageError, match="mode 0644 lets others read the key"):
        load_signer(path)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyStorageError, match="cannot read key"):
        load_signer(tmp_path / "absent.pem")


def test_public_key_round_trip(tmp_path: Path) -> None:
    signer = Signer.generate()
    path = tmp_path / "release.pub"
    save_public_key(path, signer.public_key)
    assert path.stat().st_mode & 0o777 == 0o644
    assert keyid_of(load_public_key(path)) == signer.keyid
    path.write_text("not a key")
    with pytest.raises(KeyStorageError, match=r"release\.pub: not a PEM public key"):
        load_public_key(path)
    with pytest.raises(KeyStorageError, match="cannot read key"):
        load_public_key(tmp_path / "absent.pub")


def test_docstring_example_runs() -> None:
    import doctest

    import konorkestra.keyfiles

    result = doctest.testmod(konorkestra.keyfiles)
    assert result.failed == 0 and result.attempted > 0
