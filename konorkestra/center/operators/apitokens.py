"""Operator API tokens: issue, look up, revoke. Only hashes are stored.

Example::

    >>> from konorkestra.center.store import open_store
    >>> from konorkestra.center.operators.apitokens import (
    ...     Role, authenticate_api_token, create_api_token)
    >>> engine = open_store("sqlite:///:memory:")
    >>> with engine.begin() as conn:
    ...     secret, info = create_api_token(
    ...         conn, role=Role.VIEWER, name="grafana", created_by="admin")
    >>> authenticate_api_token(engine, secret).role
    <Role.VIEWER: 'viewer'>
    >>> authenticate_api_token(engine, secret + "x") is None
    True

Invariants:

* A token is ``kt_<id>.<secret>``: ``id`` 12 hex chars (a lookup key, safe to
  log), ``secret`` 256 random bits. The store keeps ``sha256(token)`` only; a
  token shown once cannot be recovered from the database.
* The hash is compared with :func:`hmac.compare_digest`; a revoked token, an
  unknown id and a wrong secret are all simply "not authenticated".
* Roles are ordered viewer < operator < admin; a role may do what lower roles do.
* Creating a token is audited in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.store import audit, schema
from konorkestra.center.store.engine import iso, now, reader
from konorkestra.model.types import JsonObject

API_TOKEN_RE = re.compile(r"^kt_([0-9a-f]{12})\.([A-Za-z0-9_-]{20,100})$")


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class ApiTokenInfo:
    """Who a request is: the token's id, name and role (never its secret)."""

    id: str
    name: str
    role: Role
    created_at: str | None = None
    revoked_at: str | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"token:{self.name}({self.id})"

    def to_json(self) -> JsonObject:
        """The token as ``/v1/tokens`` shows it (never its secret)."""
        return {
            "id": self.id,
            "name": self.name,
            "role": str(self.role),
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _hash(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def create_api_token(
    conn: Connection, *, role: Role, name: str, created_by: str
) -> tuple[str, ApiTokenInfo]:
    """Issue a token; returns ``(token, info)``. The token is not stored."""
    token_id = secrets.token_hex(6)
    token = f"kt_{token_id}.{secrets.token_urlsafe(32)}"
    created = now()
    conn.execute(
        sa.insert(schema.api_tokens).values(
            id=token_id, hash=_hash(token), role=str(role), name=name, created_at=created
        )
    )
    audit.append(
        conn, created_by, "token.created", {"token_id": token_id, "name": name, "role": str(role)}
    )
    return token, ApiTokenInfo(token_id, name, role, iso(created))


def _info(m: Any) -> ApiTokenInfo:
    return ApiTokenInfo(
        m["id"], m["name"], Role(m["role"]), iso(m["created_at"]), iso(m["revoked_at"])
    )


def authenticate_api_token(engine: Engine, token: str) -> ApiTokenInfo | None:
    """The token's identity, or ``None`` if it is malformed, unknown, wrong or revoked."""
    match = API_TOKEN_RE.fullmatch(token.strip())
    if match is None:
        return None
    t = schema.api_tokens
    with reader(engine).connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == match.group(1))).first()
    stored = "" if row is None else str(row._mapping["hash"])
    ok = hmac.compare_digest(_hash(token.strip()), stored or _hash(""))
    if row is None or not ok or row._mapping["revoked_at"] is not None:
        return None
    return _info(row._mapping)


def list_api_tokens(engine: Engine) -> list[ApiTokenInfo]:
    t = schema.api_tokens
    with reader(engine).connect() as conn:
        return [_info(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.created_at))]


def revoke_api_token(conn: Connection, token_id: str, *, by: str) -> bool:
    """Revoke a token; False when no live token has that id."""
    t = schema.api_tokens
    done = conn.execute(
        sa.update(t).where(t.c.id == token_id, t.c.revoked_at.is_(None)).values(revoked_at=now())
    ).rowcount
    if done:
        audit.append(conn, by, "token.revoked", {"token_id": token_id})
    return bool(done)
