"""The rollouts' store: migration step 3 on an existing database, and one driving runner."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from konorkestra.center.app.datadir import Opened, open_data_dir
from konorkestra.center.rollouts import store
from konorkestra.center.rollouts.runner import RUNNER_LOCK, RolloutRunner
from konorkestra.center.store import schema
from konorkestra.center.store.engine import open_engine, reader
from konorkestra.center.store.migrations import LATEST, migrate
from tests.center.rollouts.rig import GROUP, Rig, canary

pytestmark = pytest.mark.postgresql


def test_step_3_makes_each_groups_latest_release_a_completed_rollout(opened: Opened) -> None:
    rig = Rig.create(opened, nodes=4, policy=canary())
    rig.release(1)
    second = rig.release(2)
    with opened.engine.begin() as conn:  # as a database from before rollouts looks
        for table in (schema.rollout_commands, schema.rollouts):
            table.drop(conn)
        conn.execute(sa.delete(schema.schema_version).where(schema.schema_version.c.version > 2))
    assert migrate(opened.engine) == LATEST
    row = rig.row()
    assert (row.release_id, row.state.phase.value) == (second.id, "completed")
    assert set(rig.desired().values()) == {second.id}  # every node keeps what it had
    third = rig.release(3)
    rig.step(at=0)
    now = rig.row()
    assert now.release_id == third.id and now.state.stable is not None
    assert now.state.stable.id == second.id  # a canary from it, not a "first Release"
    assert len([r for r in rig.desired().values() if r == third.id]) == 1


def test_one_runner_drives_a_postgresql_store_and_the_next_takes_over(
    tmp_path: Path, postgres_url: str
) -> None:
    # PostgreSQL only: the advisory lock is PostgreSQL's; a SQLite store has one Center.
    store_url = postgres_url
    opened = open_data_dir(tmp_path / "data", db_url=store_url)
    rig = Rig.create(opened, nodes=2, policy=canary())
    rig.release(1)
    other = open_engine(store_url)  # a second Center: its own engine and connections

    async def scenario() -> tuple[int, int, int, bool]:
        first = RolloutRunner(opened.engine, rig.releaser, notify=lambda *_: None)
        second = RolloutRunner(other, rig.releaser, notify=lambda *_: None)
        driven = len(await first.run_once())
        idle = len(await second.run_once())
        await first.stop()
        taken = len(await second.run_once())
        await second.stop()
        return driven, idle, taken, first.driving

    driven, idle, taken, still = asyncio.run(scenario())
    assert (driven, idle, still) == (1, 0, False)
    assert taken == 1  # the rollout still runs (nodes have not committed): the next one visits it
    with reader(opened.engine).connect() as conn:
        assert store.current(conn, GROUP) is not None
    other.dispose()


def test_a_runner_whose_lock_session_dies_stops_driving_within_a_second(
    tmp_path: Path, postgres_url: str
) -> None:
    opened = open_data_dir(tmp_path / "data", db_url=postgres_url)
    rig = Rig.create(opened, nodes=2, policy=canary())
    rig.release(1)

    async def scenario() -> float:
        runner = RolloutRunner(opened.engine, rig.releaser, notify=lambda *_: None, interval=60)
        await runner.start()
        try:
            deadline = time.monotonic() + 10
            while not runner.driving and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert runner.driving
            with reader(opened.engine).connect() as conn:  # end the lock's session
                conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND granted"
                    " AND (classid::bigint << 32 | objid::bigint) = :key"
                ), {"key": RUNNER_LOCK})  # fmt: skip
                conn.commit()
            cut = time.monotonic()
            while runner.driving and time.monotonic() < cut + 10:
                await asyncio.sleep(0.02)
            return time.monotonic() - cut
        finally:
            await runner.stop()

    assert asyncio.run(scenario()) < 1.0
