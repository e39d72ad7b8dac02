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
* Steps use SQLAlchemy Core constructs, so they run on SQLite and PostgreSQL; a
  step that only PostgreSQL needs (ALTER COLUMN ... TYPE, which SQLite lacks)
  says so and does nothing on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.store import schema
from konorkestra.center.store.engine import now
from konorkestra.model.types import GroupName, ReleaseId, Sequence
from konorkestra.rollout import Phase, ReleaseRef, RolloutState


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer Center; this one will not touch it."""


def _v1_initial(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.V1_TABLES))


def _v3_rollouts(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.V3_TABLES))
    # Step 1 of a new database already made it (create_all makes a table's indexes).
    schema.NODE_REPORTS_BY_GROUP.create(conn, checkfirst=True)
    # Before rollouts every Release went to every node at once: each Group's latest
    # Release is a completed rollout, the stable one the next rollout starts from.
    R, when = schema.releases, now()
    top = sa.select(R.c.group, sa.func.max(R.c.sequence).label("seq")).group_by(R.c.group)
    latest = top.subquery()
    for rid, group, seq in conn.execute(
        sa.select(R.c.id, R.c.group, R.c.sequence).join(
            latest, sa.and_(R.c.group == latest.c.group, R.c.sequence == latest.c.seq)
        )
    ):
        ref = ReleaseRef(ReleaseId(rid), Sequence(seq))
        state = RolloutState(GroupName(group), ref, None, Phase.COMPLETED, 0, (), when, when)
        conn.execute(
            sa.insert(schema.rollouts).values(
                group=group, release_id=rid, phase=state.phase.value, state=state.to_json(),
                readings=[], revision=1, next_at=None, created_at=when, updated_at=when,
            )
        )  # fmt: skip


def _v4_ui_sessions(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.V4_TABLES))


WIDENED: tuple[sa.Column[object], ...] = (
    schema.releases.c.id,
    schema.releases.c.previous_id,
    schema.configset_versions.c.version,
    schema.audit.c.seq,
    schema.node_reports.c.id,
)
"""Columns step 1 made too narrow for PostgreSQL (VARCHAR(40) ids, 32-bit integers)."""


def _v2_widen(conn: Connection) -> None:
    # SQLite enforces no VARCHAR length and its INTEGER is 64-bit: nothing to change there.
    if conn.dialect.name != "postgresql":
        return
    quote = conn.dialect.identifier_preparer.quote
    for column in WIDENED:
        table = quote(column.table.name)
        type_sql = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(
            f"ALTER TABLE {table} ALTER COLUMN {quote(column.name)} TYPE {type_sql}"
        )
        if column.autoincrement is True:  # its SERIAL sequence stops at 2**31 - 1 too
            found = conn.execute(
                sa.select(sa.func.pg_get_serial_sequence(column.table.name, column.name))
            ).scalar()
            if found:
                conn.exec_driver_sql(f"ALTER SEQUENCE {found} AS {type_sql}")


Step = tuple[int, str, Callable[[Connection], None]]

STEPS: tuple[Step, ...] = (
    (1, "initial tables: commits, blobs, releases, audit, tokens, nodes", _v1_initial),
    (2, "PostgreSQL: 64-bit versions and counters, 128-char release ids", _v2_widen),
    (3, "rollouts, rollout_commands; node_reports indexed by group", _v3_rollouts),
    (4, "ui_sessions: dashboard log-ins", _v4_ui_sessions),
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
