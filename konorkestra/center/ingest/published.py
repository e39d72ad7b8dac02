"""Every ``name@version`` the Center accepted, kept in memory in step with the store.

Example::

    published = PublishedVersions()
    with reader(engine).connect() as conn:
        history = published.current(conn)     # a History, as store_history(conn) gives

Invariants:

* ``current(conn)`` equals a full read of ``configset_versions`` joined with
  ``commits`` (:func:`store_history`) at that moment: rows are never updated
  or deleted, and a version row is written in the same transaction as its
  commit row, so reading the versions of commits with ``seq`` above the last
  one seen brings the map up to date.
* That needs commits to become visible in ``seq`` order, which holds because
  ingest writes one commit per transaction and only one ingest runs at a time
  (SQLite serializes writers). Another processor sharing the store (a restart,
  a test) is picked up the same way.
* Per commit the cost is one primary-key ``max(seq)`` read, plus a read of
  the new versions only (indexed by ``configset_versions.commit``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from konorkestra.center.store import schema
from konorkestra.model.types import Digest
from konorkestra.repo import History, Published

V, C = schema.configset_versions, schema.commits


def _versions(conn: Connection, after_seq: int | None = None) -> dict[str, Published]:
    query = sa.select(V.c.name, V.c.version, V.c.digest, V.c.commit, C.c.subject).join(
        C, C.c.sha == V.c.commit
    )
    if after_seq is not None:
        query = query.where(C.c.seq > after_seq)
    return {
        f"{r.name}@{r.version}": Published(Digest(r.digest), r.commit, r.subject)
        for r in conn.execute(query)
    }


def store_history(conn: Connection) -> History:
    """``name@version`` -> first accepted digest, read in full from the store."""
    return History(_versions(conn))


class PublishedVersions:
    """An incrementally refreshed :func:`store_history`."""

    def __init__(self) -> None:
        self._entries: dict[str, Published] = {}
        self._seq: int | None = None
        self.rows_read = 0
        """Version rows read so far (tests check the work is incremental)."""

    def current(self, conn: Connection) -> History:
        """The store's history now; reads only versions of commits not yet seen."""
        top = conn.execute(sa.select(sa.func.max(C.c.seq))).scalar()
        if top is not None and (self._seq is None or top > self._seq):
            fresh = _versions(conn, self._seq)
            self.rows_read += len(fresh)
            self._entries.update(fresh)
            self._seq = int(top)
        return History(dict(self._entries))
