"""One leader among Center replicas: a PostgreSQL session advisory lock on its own connection.

Example (how :mod:`konorkestra.center.ingest.worker` uses it)::

    lock = LeaderLock(engine, INGEST_LOCK, what="Git ingest")
    if await asyncio.to_thread(lock.hold):   # acquire, or check it is still ours
        ...                                  # drive; re-check at least every second
    lock.release()                           # on stop

Invariants:

* At most one session of the database holds the lock at a time (PostgreSQL
  says so); the session is a connection this object opens and keeps. On
  SQLite there is a single Center: :attr:`LeaderLock.held` is always true.
* :meth:`LeaderLock.hold` acquires the lock if free, or, if held, proves the
  session is still alive (``SELECT 1``). A failed check drops the connection and
  reports ``False``: a replica whose store connection died stops driving at its
  next check, and PostgreSQL frees the lock when the dead session ends (at
  once for a killed process on the same host; after the TCP keepalive for a lost
  network), so a standby takes over at its next try.
* :meth:`LeaderLock.hold` is blocking; call it from a worker thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.store.engine import WRITE_LOCK, reader

log = logging.getLogger(__name__)
INGEST_LOCK = WRITE_LOCK + 2
"""The advisory lock key of the replica that ingests Git (the runner's is ``WRITE_LOCK + 1``)."""


class LeaderLock:
    """A session advisory lock held on a dedicated connection (see the module invariants)."""

    def __init__(self, engine: Engine, key: int, *, what: str) -> None:
        self.engine, self.key, self.what = engine, key, what
        self.postgres = engine.dialect.name == "postgresql"
        self.held = not self.postgres
        self.checked = not self.postgres
        """True once :meth:`hold` has run at least once (a standby is ready too)."""
        self._conn: Connection | None = None
        self._mutex = threading.Lock()

    def hold(self) -> bool:
        """Acquire the lock or check it is still ours; ``True`` while this replica leads."""
        if not self.postgres:
            return True
        with self._mutex:
            try:
                if self._conn is not None:
                    self._conn.execute(sa.text("SELECT 1"))
                    self._conn.commit()
                else:
                    conn = reader(self.engine).connect()
                    got = conn.execute(sa.select(sa.func.pg_try_advisory_lock(self.key))).scalar()
                    conn.commit()
                    if not got:
                        conn.close()
                        return self._set(False)
                    self._conn = conn
                    log.info("this Center leads %s (advisory lock %d)", self.what, self.key)
                return self._set(True)
            except sa.exc.DBAPIError as exc:
                log.warning("%s: lost the store connection of the leader lock: %s", self.what, exc)
                lost, self._conn = self._conn, None
                if lost is not None:
                    lost.invalidate()
                return self._set(False)

    def _set(self, held: bool) -> bool:
        if self.held and not held:
            log.warning("this Center no longer leads %s", self.what)
        self.held, self.checked = held, True
        return held

    def release(self) -> None:
        """Give the lock up (on stop). Blocking."""
        with self._mutex:
            conn, self._conn = self._conn, None
            self.held = not self.postgres
            if conn is None:
                return
            try:  # a pooled connection outlives close(): unlock explicitly, or drop the session
                conn.execute(sa.select(sa.func.pg_advisory_unlock(self.key)))
                conn.commit()
            except sa.exc.SQLAlchemyError:
                conn.invalidate()
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                conn.close()
