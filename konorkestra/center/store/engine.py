"""Open the Center's database: SQLite by default, any SQLAlchemy URL otherwise.

Example::

    >>> from konorkestra.center.store.engine import open_engine
    >>> engine = open_engine("sqlite:///:memory:")
    >>> engine.dialect.name
    'sqlite'

Invariants:

* SQLite runs in WAL mode with ``foreign_keys=ON`` and a ``busy_timeout``.
  Every transaction begins ``IMMEDIATE``: a write that reads first (next
  sequence, audit chain head, a join token) takes the write lock up front,
  queues behind other writers for up to ``busy_timeout`` and is never raced.
  Pure reads go through :func:`reader`, whose transactions begin ``DEFERRED``:
  under WAL they read a consistent snapshot and never wait for the writer, so
  the API keeps answering while a long ingest transaction runs.
* Nothing here is SQLite-only at the query level; only connection setup differs
  per dialect, so PostgreSQL needs a URL, not new queries.
* Times are stored as UTC; :func:`utc` turns whatever a driver returns (naive
  from SQLite, aware from PostgreSQL) back into an aware UTC datetime.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

BUSY_TIMEOUT_MS = 10_000
_DEFERRED = "konorkestra_deferred"


def sqlite_url(path: str) -> str:
    """The SQLAlchemy URL of a SQLite file at ``path``."""
    return f"sqlite+pysqlite:///{path}"


def open_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the pragmas and begin mode above."""
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
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        deferred = conn.get_execution_options().get(_DEFERRED, False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

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
