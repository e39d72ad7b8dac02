"""The store wing: SQLAlchemy Core tables, engine setup, migrations, the audit log, retention.

Example::

    >>> from konorkestra.center.store import open_store
    >>> engine = open_store("sqlite:///:memory:")
    >>> from konorkestra.center.store import schema
    >>> schema.releases.name
    'releases'
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.store.engine import open_engine, unavailable
from konorkestra.center.store.migrations import migrate


def open_store(url: str) -> Engine:
    """Open the database at ``url`` and migrate it to the latest schema.

    Raises :class:`StoreUnavailable` when the driver is missing or the database
    cannot be reached or refuses the connection.
    """
    engine = open_engine(url)
    try:
        migrate(engine)
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        engine.dispose()
        raise unavailable(url, exc) from None
    return engine


__all__ = ["open_store"]
