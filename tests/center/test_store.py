"""The store: schema creation, versioned migrations, SQLite settings, shared tables."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from konorkestra.center.store import open_store, schema
from konorkestra.center.store.engine import open_engine, sqlite_url
from konorkestra.center.store.migrations import LATEST, SchemaTooNew, current_version, migrate


def test_first_open_creates_every_table_and_records_the_version(tmp_path: Path) -> None:
    engine = open_store(sqlite_url(str(tmp_path / "c.db")))
    names = set(sa.inspect(engine).get_table_names())
    assert {t.name for t in schema.V1_TABLES} | {"schema_version"} <= names
    with engine.connect() as conn:
        assert current_version(conn) == LATEST
        rows = conn.execute(sa.select(schema.schema_version)).all()
    assert [r.version for r in rows] == list(range(1, LATEST + 1))


def test_migrate_twice_changes_nothing(tmp_path: Path) -> None:
    url = sqlite_url(str(tmp_path / "c.db"))
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


def test_a_database_from_a_newer_center_is_refused(tmp_path: Path) -> None:
    engine = open_store(sqlite_url(str(tmp_path / "c.db")))
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


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    engine = open_store(sqlite_url(str(tmp_path / "c.db")))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.insert(schema.policies).values(commit="f" * 40, name="p", digest="sha256:x", body={})
        )


def test_release_sequence_is_unique_per_group(tmp_path: Path) -> None:
    engine = open_store(sqlite_url(str(tmp_path / "c.db")))
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
