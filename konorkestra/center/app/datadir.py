"""The Center's data directory: store, signing keys, trust root, admin token.

Layout::

    <data>/center.db            SQLite store (unless --db names another database)
    <data>/keys/root.pem        root-role key            (0600)
    <data>/keys/release.pem     release-role key         (0600)
    <data>/keys/timestamp.pem   timestamp-role key       (0600)
    <data>/trust/root.json      trust root v1, signed by the root key
    <data>/admin.token          the first admin API token (0600)
    <data>/mirror.git           bare mirror of a remote config repo (remote only)

Invariants:

* The directory is created 0700; every secret is written 0600, atomically and
  durably (temp file, fsync, rename, fsync of the directory).
* ``trust/root.json`` is written last: its presence means the keys beside it
  are complete. Keys without a root (an interrupted first start) are replaced.
* An admin token is created only when the store has no live admin token; it is
  printed once by the CLI and kept in ``admin.token`` for the operator.
* A second start finds everything and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.operators.apitokens import Role, create_api_token
from konorkestra.center.pki.ca import write_private_file
from konorkestra.center.store import open_store, schema
from konorkestra.center.store.engine import sqlite_url
from konorkestra.keyfiles import load_signer, save_private_key
from konorkestra.trust import Signer, TrustRoot, make_root

ROOT_LIFETIME = dt.timedelta(days=365)
ROLES = ("root", "release", "timestamp")


@dataclass(frozen=True)
class DataDir:
    """Paths inside a Center data directory."""

    path: Path

    @property
    def db_url(self) -> str:
        return sqlite_url(str(self.path / "center.db"))

    def key(self, role: str) -> Path:
        return self.path / "keys" / f"{role}.pem"

    @property
    def trust_root(self) -> Path:
        return self.path / "trust" / "root.json"

    @property
    def admin_token(self) -> Path:
        return self.path / "admin.token"

    @property
    def mirror(self) -> Path:
        return self.path / "mirror.git"


@dataclass(frozen=True)
class Opened:
    """An initialized data directory, ready to serve."""

    data: DataDir
    engine: Engine
    signers: dict[str, Signer]
    trust_root: bytes
    new_admin_token: str | None
    """Set only on the start that created it: print it once."""


def _init_keys(data: DataDir) -> tuple[dict[str, Signer], bytes]:
    if data.trust_root.exists():
        signers = {role: load_signer(data.key(role)) for role in ROLES}
        raw = data.trust_root.read_bytes()
        TrustRoot.from_bytes(raw)  # refuse a damaged root now, not when an agent asks
        return signers, raw
    (data.path / "keys").mkdir(mode=0o700, exist_ok=True)
    signers = {role: Signer.generate() for role in ROLES}
    for role, signer in signers.items():
        save_private_key(data.key(role), signer.private_key)
    raw = make_root(
        root=[signers["root"].public_key],
        release=[signers["release"].public_key],
        timestamp=[signers["timestamp"].public_key],
        expires=dt.datetime.now(dt.UTC) + ROOT_LIFETIME,
        signers=[signers["root"]],
    )
    write_private_file(data.trust_root, raw, 0o644)
    return signers, raw


def _init_admin(engine: Engine, data: DataDir) -> str | None:
    t = schema.api_tokens
    with engine.begin() as conn:
        live = conn.execute(
            sa.select(t.c.id).where(t.c.role == str(Role.ADMIN), t.c.revoked_at.is_(None))
        ).first()
        if live is not None:
            return None
        token, _ = create_api_token(conn, role=Role.ADMIN, name="admin", created_by="center")
        write_private_file(data.admin_token, (token + "\n").encode(), 0o600)
    return token


def open_data_dir(path: str | Path, *, db_url: str | None = None) -> Opened:
    """Create or open the data directory at ``path`` (see the module invariants)."""
    data = DataDir(Path(path).absolute())
    data.path.mkdir(mode=0o700, parents=True, exist_ok=True)
    signers, root = _init_keys(data)
    engine = open_store(db_url or data.db_url)
    token = _init_admin(engine, data)
    return Opened(data, engine, signers, root, token)
