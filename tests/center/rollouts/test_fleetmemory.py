"""The fleet memory over a real SQLite store: always what a fresh ``load_fleet`` reads,
reading and folding only what changed."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings

from konorkestra.center.app.datadir import Opened
from konorkestra.center.nodes.fold import ReportRecord
from konorkestra.center.rollouts.fleet import fleet_rows, load_fleet
from konorkestra.center.rollouts.fleetmemory import (
    RELOAD_AGE,
    FleetMemories,
    Memories,
    ReportRows,
)
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.model.types import ReleaseId
from konorkestra.rollout import Fleet
from tests.center.rollouts.randomfleet import ROUNDS, SCRIPT, World, fleet_world
from tests.center.rollouts.rig import GROUP


def fresh_and_remembered(
    world: World, memories: FleetMemories, release: ReleaseId, metrics: bool
) -> tuple[Fleet, Fleet]:
    kept = memories.fleet(world.engine, GROUP, release, since=world.since, metrics=metrics)
    with reader(world.engine).connect() as conn:
        fresh = load_fleet(conn, GROUP, release, since=world.since, metrics=metrics)
    return fresh, kept


def assert_remembered(world: World, rounds: list[list[tuple]]) -> Fleet:  # type: ignore[type-arg]
    """After each round, every Release's fleet (with and without metrics) read both ways."""
    memories, fresh = FleetMemories(clock=world.clock), Fleet(())
    for ops in rounds:
        world.apply(ops)
        for release, metrics in ((r.id, m) for r in world.releases for m in (False, True)):
            fresh, kept = fresh_and_remembered(world, memories, release, metrics)
            assert kept == fresh, (ops, release, metrics)
    return fresh


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds=ROUNDS)
def test_the_memory_equals_a_fresh_read_after_every_round(rounds: list[list[tuple]]) -> None:  # type: ignore[type-arg]
    with fleet_world() as world:
        assert_remembered(world, rounds)


@pytest.mark.postgresql
def test_on_both_stores_a_scripted_fleet_is_remembered_as_read(opened: Opened) -> None:
    assert assert_remembered(World.of(opened), SCRIPT).reports


def test_a_new_report_is_read_and_folded_alone() -> None:
    with fleet_world(nodes=6) as world:
        release = world.releases[0]
        for node in world.rig.nodes:
            world.rig.commit(node, release, ["applied", "failed"])
        folds: list[str] = []

        def fold(node: str, records: list[ReportRecord]) -> int:
            folds.append(node)
            return len(records)

        rows = ReportRows(fleet_rows(GROUP, release.id, since=world.since, metrics=False), fold)
        with reader(world.engine).connect() as conn:
            assert rows.read(conn)
        assert [rows.folded(n) for n in world.rig.nodes] == [5] * 6  # applied, 2 deliveries, 2 acks
        folds.clear()
        world.rig.commit("n03", release, ["applied"])
        with reader(world.engine).connect() as conn:
            assert rows.read(conn)
            assert not rows.read(conn)  # nothing new
        assert [rows.folded(n) for n in world.rig.nodes] == [5, 5, 5, 8, 5, 5]
        assert folds == ["n03"] and rows.reloads == 1  # one node re-folded, no reload


def test_pruned_rows_are_seen_by_count_then_by_id_and_age_reloads() -> None:
    nr = schema.node_reports
    with fleet_world() as world:
        first = world.releases[0]
        world.rig.metric("n02", "error_rate", 0.5, at=5)
        for node in world.rig.nodes:
            world.rig.commit(node, first, ["applied"])
        memories = FleetMemories(clock=world.clock)
        fresh, kept = fresh_and_remembered(world, memories, first.id, False)
        assert kept == fresh and len(kept.reports) == 4
        with world.engine.begin() as conn:  # as many rows as before, other ids
            acks = sa.select(sa.func.min(nr.c.id)).where(nr.c.kind == "ack")
            conn.execute(sa.delete(nr).where(nr.c.id == acks.scalar_subquery()))
            stale = {"group": GROUP, "stale": True}
            conn.execute(
                sa.update(nr).where(nr.c.kind == "metric").values(kind="stale", body=stale)
            )
        assert fresh_and_remembered(world, memories, first.id, False)[1] == kept  # not yet...
        world.clock.at += 31  # ...but once the ids are compared
        fresh, kept = fresh_and_remembered(world, memories, first.id, False)
        assert kept == fresh and fresh.report("n02").stale and not fresh.report("n00").acks
        world.apply([("release",)])
        world.rig.commit("n01", world.releases[1])  # n01 moves on: its old rows may go
        world.apply([("prune",)])
        fresh, kept = fresh_and_remembered(world, memories, first.id, False)
        assert kept == fresh and fresh.report("n01").committed is None  # counted: fewer rows
        with world.engine.begin() as conn:  # a change of a row no code path makes...
            for row_id, body in conn.execute(
                sa.select(nr.c.id, nr.c.body).where(nr.c.kind == "ack")
            ):
                failed = {**body, "status": "failed", "error": "edited"}
                conn.execute(sa.update(nr).where(nr.c.id == row_id).values(body=failed))
        world.clock.at += 31
        assert fresh_and_remembered(world, memories, first.id, False)[1] == kept  # ...is kept
        world.clock.at += RELOAD_AGE  # until the memory is too old
        fresh, kept = fresh_and_remembered(world, memories, first.id, False)
        assert kept == fresh and kept.report("n03").acks[0].outcome == "failed"


def test_nodes_enrolled_or_revoked_are_seen() -> None:
    with fleet_world() as world:
        memories = FleetMemories(clock=world.clock)
        release = world.releases[0].id
        before = fresh_and_remembered(world, memories, release, False)[1]
        world.apply([("enroll", ("checkout",)), ("revoke", 0), ("enroll", ("search",))])
        fresh, kept = fresh_and_remembered(world, memories, release, False)
        assert kept == fresh and [n.id for n in kept.nodes] == ["e04", "n01", "n02", "n03"]
        assert [n.id for n in before.nodes] == ["n00", "n01", "n02", "n03"]


def test_past_its_limit_it_holds_the_newest_rows_as_a_fresh_read_does() -> None:
    with fleet_world() as world:
        release = world.releases[0]
        for node in world.rig.nodes:
            world.rig.commit(node, release, ["applied"])  # 3 rows each, 12 in all
        where = fleet_rows(GROUP, release.id, since=world.since, metrics=False)
        rows = ReportRows(where, lambda _n, records: len(records), limit=10)
        with reader(world.engine).connect() as conn:
            rows.read(conn)
            assert rows.overflow and [rows.folded(n) for n in world.rig.nodes] == [1, 3, 3, 3]
            assert rows.read(conn) and rows.reloads == 2  # re-read every time while over


def test_threads_share_one_memory() -> None:
    with fleet_world(nodes=8) as world:
        release = world.releases[0]
        for node in world.rig.nodes:
            world.rig.commit(node, release, ["applied", "failed"])
        memories = FleetMemories()

        def read(_: int) -> Fleet:
            return memories.fleet(world.engine, GROUP, release.id, since=world.since, metrics=False)

        with ThreadPoolExecutor(4) as pool:
            fleets = list(pool.map(read, range(16)))
        fresh = fresh_and_remembered(world, FleetMemories(), release.id, False)[0]
        assert all(f == fresh for f in fleets) and len(fresh.reports) == 8


def test_memories_drop_the_least_recently_used() -> None:
    memories: Memories[str, object] = Memories(size=2)
    a, b = memories.get("a", object), memories.get("b", object)
    assert memories.get("a", object) is a  # a is now the most recent
    memories.get("c", object)
    assert memories.get("a", object) is a and memories.get("b", object) is not b


def test_metrics_are_kept_per_rollout_start() -> None:
    with fleet_world() as world:
        memories = FleetMemories(clock=world.clock)
        release = world.releases[0].id
        world.rig.metric("n00", "error_rate", 0.5, at=5)
        later = world.since + dt.timedelta(hours=2)
        early = memories.fleet(world.engine, GROUP, release, since=world.since)
        late = memories.fleet(world.engine, GROUP, release, since=later)
        with reader(world.engine).connect() as conn:
            assert late == load_fleet(conn, GROUP, release, since=later)
        assert len(early.report("n00").metrics) == 1 and not late.report("n00").metrics
