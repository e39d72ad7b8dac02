"""Schema versioning: an ordered list of migration steps, applied on start.

Example::

    >>> from konorkestra.center.store.engine import open_engine
    >>> from konorkestra.center.store.migrations import LATEST, migrate
    >>> engine = open_engine("sqlite:///:memory:")
    >>> migrate(engine) == LATEST
    True

Invariants (see docs/adr/0002-center-store-migrations.md):

* ``schema_version`` holds one row per applied step; the database's version is
  the highest. Steps are numbered 1, 2, 3... with no gaps and never renumbered.
* Each step runs in its own transaction together with the insert of its
  ``schema_version`` row: a step is applied completely or not at all.
* A database newer than this code (a version above :data:`LATEST`) is refused
  with :class:`SchemaTooNew` rather than touched.
* Steps use SQLAlchemy Core constructs only, so they run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.store import schema
from konorkestra.center.store.engine import now


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer Center; this one will not touch it."""


def _v1_initial(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.V1_TABLES))


Step = tuple[int, str, Callable[[Connection], None]]

STEPS: tuple[Step, ...] = (
    (1, "initial tables: commits, blobs, releases, audit, tokens, nodes", _v1_initial),
)
LATEST = STEPS[-1][0]


def current_version(conn: Connection) -> int:
    """The applied version, 0 for an empty database."""
    if not sa.inspect(conn).has_table(schema.schema_version.name):
        return 0
    found = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar()
    return int(found or 0)


def migrate(engine: Engine) -> int:
    """Bring the database to :data:`LATEST`; returns the resulting version."""
    with engine.begin() as conn:
        schema.metadata.create_all(conn, tables=[schema.schema_version])
        version = current_version(conn)
    if version > LATEST:
        raise SchemaTooNew(
            f"database schema is version {version}, this Center knows up to {LATEST}; "
            "upgrade konorkestra"
        )
    for number, description, step in STEPS:
        if number <= version:
            continue
        with engine.begin() as conn:
            if current_version(conn) >= number:  # another replica got here first
                continue
            step(conn)
            conn.execute(
                sa.insert(schema.schema_version).values(
                    version=number, description=description, applied_at=now()
                )
            )
        version = number
    return version
