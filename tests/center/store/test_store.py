"""The store: schema creation, versioned migrations, per-dialect settings, shared tables.

Tests taking ``store_url`` run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from konorkestra.center.store import open_store, schema
from konorkestra.center.store.engine import normalize_url, now, open_engine, reader, sqlite_url
from konorkestra.center.store.migrations import LATEST, SchemaTooNew, current_version, migrate
from tests.helpers.concurrent import at_once

pytestmark = pytest.mark.postgresql


def test_first_open_creates_every_table_and_records_the_version(store_url: str) -> None:
    engine = open_store(store_url)
    names = set(sa.inspect(engine).get_table_names())
    assert {t.name for t in schema.V1_TABLES} | {"schema_version"} <= names
    with engine.connect() as conn:
        assert current_version(conn) == LATEST
        rows = conn.execute(sa.select(schema.schema_version)).all()
    assert [r.version for r in rows] == list(range(1, LATEST + 1))


def test_migrate_twice_changes_nothing(store_url: str) -> None:
    url = store_url
    engine = open_store(url)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.api_tokens).values(
                id="abc", hash="h", role="viewer", name="n", created_at=sa.func.now()
            )
        )
    engine.dispose()
    again = open_store(url)
    assert migrate(again) == LATEST
    with again.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.api_tokens)).scalar() == 1
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(schema.schema_version)).scalar()
            == LATEST
        )


def test_a_database_from_a_newer_center_is_refused(store_url: str) -> None:
    engine = open_store(store_url)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.schema_version).values(
                version=LATEST + 1, description="future", applied_at=sa.func.now()
            )
        )
    with pytest.raises(SchemaTooNew, match="upgrade konorkestra"):
        migrate(engine)


def test_sqlite_runs_wal_with_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    engine = open_engine(sqlite_url(str(tmp_path / "c.db")))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_foreign_keys_are_enforced(store_url: str) -> None:
    engine = open_store(store_url)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.insert(schema.policies).values(commit="f" * 40, name="p", digest="sha256:x", body={})
        )


def test_release_sequence_is_unique_per_group(store_url: str) -> None:
    engine = open_store(store_url)
    row = dict(
        bundle=b"{}",
        digest="d",
        state="created",
        configsets=[],
        policy={},
        created_by="t",
        created_at=sa.func.now(),
        expires_at=sa.func.now(),
    )
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.releases).values(id="a", group="g", sequence=1, **row))
        conn.execute(sa.insert(schema.releases).values(id="b", group="h", sequence=1, **row))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(schema.releases).values(id="c", group="g", sequence=1, **row))


def test_enrollment_tables_have_the_agreed_columns() -> None:
    assert list(schema.nodes.c.keys()) == [
        "id",
        "name",
        "labels",
        "groups",
        "cert_serial",
        "cert_not_after",
        "revoked_at",
        "last_seen",
        "created_at",
    ]
    assert list(schema.join_tokens.c.keys()) == [
        "id",
        "secret_hmac",
        "groups",
        "labels",
        "node_name",
        "expires_at",
        "used_at",
        "used_by",
        "revoked_at",
        "created_by",
        "created_at",
    ]
    assert list(schema.node_reports.c.keys()) == [
        "id",
        "node_id",
        "group",
        "release_id",
        "kind",
        "body",
        "created_at",
    ]
    assert schema.nodes.c.revoked_at.nullable and schema.join_tokens.c.used_at.nullable


def test_no_sqlite_only_sql_in_the_schema() -> None:
    from sqlalchemy.dialects import postgresql

    for table in schema.metadata.sorted_tables:
        ddl = str(sa.schema.CreateTable(table).compile(dialect=postgresql.dialect()))
        assert "CREATE TABLE" in ddl


def test_postgresql_urls_mean_psycopg_3() -> None:
    assert normalize_url("postgresql://c@db/k") == "postgresql+psycopg://c@db/k"
    assert normalize_url("postgres://c:pw@db:5433/k") == "postgresql+psycopg://c:pw@db:5433/k"
    for kept in ("postgresql+psycopg://c@db/k", "postgresql+psycopg2://c@db/k", "sqlite:///c.db"):
        assert normalize_url(kept) == kept


def test_replicas_migrating_one_database_at_once_both_succeed(store_url: str) -> None:
    outcomes = at_once(lambda: open_store(store_url) and LATEST, [(), ()])
    assert outcomes == [LATEST, LATEST]
    with open_engine(store_url).connect() as conn:
        versions = conn.execute(sa.select(schema.schema_version.c.version)).scalars().all()
    assert sorted(versions) == list(range(1, LATEST + 1))


def test_a_reader_never_waits_for_an_open_write_transaction(store_url: str) -> None:
    engine = open_store(store_url)
    holding, release = threading.Event(), threading.Event()
    t = schema.api_tokens

    def writer() -> None:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(t).values(id="w", hash="h", role="viewer", name="n", created_at=now())
            )
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with reader(engine).connect() as conn:
            seen = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
        assert seen == 0  # a snapshot without the uncommitted row ...
        assert time.monotonic() - started < 5  # ... taken without queueing behind the writer
    finally:
        release.set()
        thread.join(30)
    with reader(engine).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() == 1


def _widest_values(conn: sa.Connection, n: int) -> None:
    """A 63-char group's Release id, the largest ConfigSet version, ids past 2**31."""
    group = "g" * 63
    conn.execute(
        sa.insert(schema.blobs).values(digest=f"d{n}", size=1, data=b"x", created_at=now())
    )
    conn.execute(sa.insert(schema.commits).values(
        sha=f"{n}" * 40, branch="main", author="a", subject="s", status="accepted",
        diagnostics=[], committed_at=now(), ingested_at=now()))  # fmt: skip
    conn.execute(sa.insert(schema.configset_versions).values(
        name="c", version=2**53 - n, digest=f"d{n}", commit=f"{n}" * 40,
        created_at=now()))  # fmt: skip
    rid = f"{group}-{2**31 + n}-{'f' * 16}"
    conn.execute(sa.insert(schema.releases).values(
        id=rid, group=group, sequence=n, bundle=b"{}", digest="d", state="created",
        configsets=[], policy={}, previous_id=rid, created_by="t", created_at=now(),
        expires_at=now()))  # fmt: skip
    conn.execute(sa.insert(schema.node_reports).values(
        id=2**31 + n, node_id="n", kind="status", body={}, created_at=now()))  # fmt: skip


def test_the_longest_ids_and_largest_numbers_a_definition_allows_fit(store_url: str) -> None:
    engine = open_store(store_url)
    with engine.begin() as conn:
        _widest_values(conn, 1)
        conn.execute(sa.insert(schema.node_reports).values(
            node_id="n", kind="status", body={}, created_at=now()))  # fmt: skip
    with engine.connect() as conn:
        ids = conn.execute(sa.select(schema.node_reports.c.id)).scalars().all()
        assert len(ids) == 2 and max(ids) > 2**31  # the counter continues past 2**31 ...
        assert conn.execute(sa.select(schema.configset_versions.c.version)).scalar() == 2**53 - 1


def test_step_2_widens_a_version_1_postgresql_database(postgres_url: str) -> None:
    # PostgreSQL only: SQLite enforces no VARCHAR length and its INTEGER is 64-bit.
    store_url = postgres_url
    engine = open_store(store_url)
    with engine.begin() as conn:  # make it look like step 1 of the first release made it
        for table, column, narrow in [("releases", "id", "VARCHAR(40)"),
                                      ("releases", "previous_id", "VARCHAR(40)"),
                                      ("configset_versions", "version", "INTEGER"),
                                      ("audit", "seq", "INTEGER"),
                                      ("node_reports", "id", "INTEGER")]:  # fmt: skip
            conn.exec_driver_sql(f'ALTER TABLE {table} ALTER COLUMN "{column}" TYPE {narrow}')
        conn.exec_driver_sql("ALTER SEQUENCE node_reports_id_seq AS INTEGER")
        conn.execute(sa.delete(schema.schema_version).where(schema.schema_version.c.version > 1))
    with pytest.raises(sa.exc.DataError), engine.begin() as conn:
        _widest_values(conn, 1)
    assert migrate(open_engine(store_url)) == LATEST
    with engine.begin() as conn:
        _widest_values(conn, 2)
