"""Open the Center's database: SQLite by default, PostgreSQL by URL.

Example::

    >>> from konorkestra.center.store.engine import open_engine, normalize_url
    >>> engine = open_engine("sqlite:///:memory:")
    >>> engine.dialect.name
    'sqlite'
    >>> normalize_url("postgresql://center@db.internal/konorkestra")
    'postgresql+psycopg://center@db.internal/konorkestra'

Invariants (see docs/adr/0008-center-store-on-postgresql.md):

* One writer at a time, on every backend. Every transaction not opened through
  :func:`reader` takes the store's write lock first: a write that reads first
  (next sequence, audit chain head, a join token) queues behind other writers
  for up to :data:`BUSY_TIMEOUT_MS` and is never raced.
  SQLite: WAL mode, ``foreign_keys=ON``, ``busy_timeout``, transactions begin
  ``IMMEDIATE``. PostgreSQL: transactions run at READ COMMITTED and take the
  transaction-scoped advisory lock :data:`WRITE_LOCK` first, so the statements
  after it see everything the previous writer committed; ``lock_timeout``
  bounds the wait. The lock is per database, so it holds across replicas.
* Pure reads go through :func:`reader`: they never wait for the writer (WAL
  snapshots on SQLite, MVCC on PostgreSQL), so the API keeps answering while a
  long ingest transaction runs.
* Nothing here is dialect-specific at the query level; only connection setup
  differs per dialect.
* ``postgresql://`` URLs mean psycopg 3 (the ``postgres`` extra), whatever
  SQLAlchemy's default PostgreSQL driver is.
* A store that cannot be opened (driver not installed, server unreachable,
  authentication refused) raises :class:`StoreUnavailable` with one line for
  the operator; the URL in it never shows a password.
* Times are stored as UTC; :func:`utc` turns whatever a driver returns (naive
  from SQLite, aware from PostgreSQL) back into an aware UTC datetime.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

BUSY_TIMEOUT_MS = 10_000
WRITE_LOCK = 0x6B6F6E6F72  # "konor": the PostgreSQL advisory lock every writer takes
_DEFERRED = "konorkestra_deferred"


def sqlite_url(path: str) -> str:
    """The SQLAlchemy URL of a SQLite file at ``path``."""
    return f"sqlite+pysqlite:///{path}"


class StoreUnavailable(Exception):
    """The database cannot be reached or used; the message says what to fix."""


def normalize_url(url: str) -> str:
    """``url`` with ``postgresql://`` (or ``postgres://``) spelled for psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def open_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the pragmas and begin mode above."""
    url = normalize_url(url)
    if url.startswith("postgresql"):
        try:
            return _postgresql(url)
        except ImportError as exc:
            raise StoreUnavailable(
                f"{exc.name or 'the database driver'} is not installed; PostgreSQL needs "
                "psycopg 3: pip install 'konorkestra[postgres]'"
            ) from None
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    memory = ":memory:" in url or url.rstrip("/").endswith("sqlite:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = sa.pool.StaticPool
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if not memory:
                _switch_to_wal(cur)
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        deferred = conn.get_execution_options().get(_DEFERRED, False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

    return engine


def _switch_to_wal(cur: Any) -> None:
    # Two processes opening a new file at once: the switch to WAL fails "database is
    # locked" at once, without the busy handler. Retry it within the busy timeout.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def safe_url(url: str) -> str:
    """``url`` for messages and logs: the password masked."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparsable database URL>"


def unavailable(url: str, exc: sa.exc.DBAPIError) -> StoreUnavailable:
    """A driver's connection error as one operator line (what, where, the server's words)."""
    words = " ".join(str(exc.orig).split()) or exc.orig.__class__.__name__
    return StoreUnavailable(f"cannot connect to {safe_url(url)}: {words}")


def _postgresql(url: str) -> Engine:
    parsed = sa.engine.make_url(url)
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 10}
    engine = sa.create_engine(
        parsed, pool_pre_ping=True, isolation_level="READ COMMITTED", connect_args=connect_args
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET lock_timeout = {BUSY_TIMEOUT_MS}")
            cur.execute("SET TIME ZONE 'UTC'")
        dbapi_conn.commit()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if not conn.get_execution_options().get(_DEFERRED, False):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")

    return engine


def reader(engine: Engine) -> Engine:
    """The same engine for read-only work: its transactions never take the write lock."""
    return engine.execution_options(**{_DEFERRED: True})


def now() -> dt.datetime:
    """The current time, aware UTC, truncated to microseconds."""
    return dt.datetime.now(dt.UTC)


def utc(value: object) -> dt.datetime | None:
    """A stored time back as an aware UTC datetime (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def iso(value: object) -> str | None:
    """RFC 3339 text (``...Z``) of a stored time, for JSON responses."""
    when = utc(value)
    if when is None:
        return None
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
