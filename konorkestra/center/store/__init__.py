"""The Center's store: SQLAlchemy Core tables, engine setup and migrations.

Example::

    >>> from konorkestra.center.store import open_store
    >>> engine = open_store("sqlite:///:memory:")
    >>> from konorkestra.center.store import schema
    >>> schema.releases.name
    'releases'
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from konorkestra.center.store import schema
from konorkestra.center.store.engine import open_engine
from konorkestra.center.store.migrations import migrate


def open_store(url: str) -> Engine:
    """Open the database at ``url`` and migrate it to the latest schema."""
    engine = open_engine(url)
    migrate(engine)
    return engine


__all__ = ["open_store", "schema"]
