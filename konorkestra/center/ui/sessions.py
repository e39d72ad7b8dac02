"""Dashboard sessions: an API token pasted once becomes a cookie.

Example::

    with engine.begin() as conn:
        opened = open_session(conn, info, now())     # info: the pasted token's identity
    response.set_cookie(COOKIE, opened.cookie, ...)  # HttpOnly, Secure, SameSite=Strict
    session = find_session(engine, opened.cookie, now())  # None once expired or revoked

Invariants:

* The cookie is ``ks_<secret>`` with 256 random bits; the store keeps only
  ``sha256`` of it (``ui_sessions.hash``), so a database dump opens no session.
* A session acts as the API token it was opened with: its role and its audit
  actor are the token's. It is found only while it has not expired **and** the
  token is not revoked: revoking a token ends its sessions on the next request.
* Each session has its own form token (``csrf``, 256 random bits); a
  state-changing form is refused unless it carries it (compared in constant time).
* Logging out deletes the row; expired rows are deleted when the next session opens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.operators.apitokens import ApiTokenInfo, Role
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader, utc

COOKIE = "konorkestra_session"
LIFETIME = timedelta(hours=8)
"""How long a log-in lasts (absolute, not sliding): a working day."""


@dataclass(frozen=True)
class OpenedSession:
    """A new session: the cookie value (shown to the browser once) and its form token."""

    cookie: str
    csrf: str
    expires_at: datetime


@dataclass(frozen=True)
class Session:
    """Who a dashboard request is: the token's identity and the session's form token."""

    who: ApiTokenInfo
    csrf: str
    expires_at: datetime

    @property
    def actor(self) -> str:
        """The audit actor: the same as the token's over the API."""
        return self.who.actor

    def allows(self, role: Role) -> bool:
        return self.who.role.allows(role)

    def csrf_ok(self, sent: str | None) -> bool:
        """Whether a form's token is this session's (constant-time)."""
        return bool(sent) and hmac.compare_digest(self.csrf, str(sent))


def _hash(cookie: str) -> str:
    return "sha256:" + hashlib.sha256(cookie.encode()).hexdigest()


def open_session(
    conn: Connection, who: ApiTokenInfo, at: datetime, lifetime: timedelta = LIFETIME
) -> OpenedSession:
    """A new session for ``who`` (an authenticated token), stored as its hash."""
    s = schema.ui_sessions
    conn.execute(sa.delete(s).where(s.c.expires_at <= at))
    cookie, csrf = "ks_" + secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = at + lifetime
    conn.execute(
        sa.insert(s).values(
            hash=_hash(cookie), token_id=who.id, csrf=csrf, created_at=at, expires_at=expires
        )
    )
    return OpenedSession(cookie, csrf, expires)


def find_session(engine: Engine, cookie: str | None, at: datetime) -> Session | None:
    """The live session behind ``cookie``; None if absent, unknown, expired or revoked."""
    if not cookie or not cookie.startswith("ks_") or len(cookie) > 100:
        return None
    s, t = schema.ui_sessions, schema.api_tokens
    query = (
        sa.select(s.c.csrf, s.c.expires_at, t.c.id, t.c.name, t.c.role)
        .join(t, t.c.id == s.c.token_id)
        .where(s.c.hash == _hash(cookie), t.c.revoked_at.is_(None))
    )
    with reader(engine).connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    expires = utc(row.expires_at)
    if expires is None or expires <= at:
        return None
    return Session(ApiTokenInfo(row.id, row.name, Role(row.role)), row.csrf, expires)


def end_session(conn: Connection, cookie: str | None) -> None:
    """Log out: the session's row is gone (nothing happens for an unknown cookie)."""
    if cookie:
        conn.execute(
            sa.delete(schema.ui_sessions).where(schema.ui_sessions.c.hash == _hash(cookie))
        )
