"""One leader among replicas: the session advisory lock (real SQLite and PostgreSQL)."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import Engine

from konorkestra.center.store.broadcast import conninfo_of
from konorkestra.center.store.leader import INGEST_LOCK, LeaderLock

pytestmark = pytest.mark.postgresql


def end_holder(engine: Engine, key: int) -> int:
    """End the session holding advisory lock ``key`` (a killed Center, a cut connection)."""
    with psycopg.connect(conninfo_of(engine), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            " AND granted AND classid = %s AND objid = %s",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchall()
    return len(rows)


def test_one_replica_leads_and_a_standby_takes_over_when_the_leader_s_session_ends(
    engine: Engine,
) -> None:
    a = LeaderLock(engine, INGEST_LOCK, what="test")
    b = LeaderLock(engine, INGEST_LOCK, what="test")
    if engine.dialect.name != "postgresql":  # one Center: it always leads
        assert a.hold() and b.hold() and a.held and a.checked
        return
    assert not a.checked
    assert a.hold() and a.held
    assert not b.hold() and not b.held and b.checked
    assert a.hold()  # still ours: the check proves the session is alive
    assert end_holder(engine, INGEST_LOCK) == 1
    assert not a.hold() and not a.held  # the next check notices at once
    assert b.hold() and b.held
    assert not a.hold()
    b.release()
    assert a.hold()
    a.release()


def test_a_released_lock_is_free_for_the_next_replica(engine: Engine) -> None:
    a = LeaderLock(engine, INGEST_LOCK, what="test")
    b = LeaderLock(engine, INGEST_LOCK, what="test")
    assert a.hold()
    a.release()
    assert b.hold()
    b.release()
