"""The runner's decisions over a real store (SQLite and PostgreSQL), at chosen times.

Each test drives :func:`konorkestra.center.rollouts.step.step_group` the way the runner
does, with reports stored by the real report path and Releases signed by the real
Releaser, and checks what the long-poll would offer each node.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from konorkestra.center.app.datadir import Opened
from konorkestra.center.releases.queries import get_release
from konorkestra.center.rollouts import store
from konorkestra.center.rollouts.fleet import MetricMemory
from konorkestra.center.rollouts.fleetmemory import FleetMemories
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.rollout import Command
from tests.center.rollouts.rig import GROUP, T0, Rig, canary

pytestmark = pytest.mark.postgresql


@pytest.fixture(params=["fresh", "remembered"])
def rig(opened: Opened, request: pytest.FixtureRequest) -> Rig:
    """Every decision twice over: read afresh, and as the runner makes them (its fleets
    kept between passes, a Group whose inputs did not move since a decision that changed
    nothing skipped): a skip that hid a due decision fails the same assertions."""
    made = Rig.create(opened, nodes=10, policy=canary())
    if request.param == "remembered":
        made.fleets, made.quiet = FleetMemories(), {}
    return made


def on(desired: dict[str, str | None], release_id: str | None) -> list[str]:
    return sorted(n for n, r in desired.items() if r == release_id)


def test_a_first_release_goes_to_every_node_and_completes_when_all_committed(rig: Rig) -> None:
    first = rig.release(1)
    moved = rig.step(at=0)
    assert moved.changed and moved.active
    assert on(rig.desired(), first.id) == rig.nodes  # W6: one step of 100 %
    for node in rig.nodes:
        rig.commit(node, first, ["applied"])
    assert not rig.step(at=1).active
    assert rig.row().state.phase.value == "completed"
    assert "rollout.completed" in rig.events()


def completed_first(rig: Rig):  # type: ignore[no-untyped-def]
    first = rig.release(1)
    rig.step(at=0)
    for node in rig.nodes:
        rig.commit(node, first, ["applied"])
    rig.step(at=1)
    return first


def test_waves_follow_the_policy_and_the_others_keep_the_stable_release(rig: Rig) -> None:
    first = completed_first(rig)
    second = rig.release(2)
    rig.step(at=10)
    desired = rig.desired()
    [canary_node] = on(desired, second.id)  # 10 % of 10 nodes
    assert on(desired, first.id) == sorted(set(rig.nodes) - {canary_node})
    rig.commit(canary_node, second, ["applied"], at=11)
    rig.step(at=11)
    row = rig.row()
    assert row.state.phase.value == "baking"
    assert row.state.bake_until == T0 + __import__("datetime").timedelta(seconds=71)
    rig.step(at=40)  # mid-bake: nothing moves
    assert len(on(rig.desired(), second.id)) == 1
    quiet = rig.step(at=41)  # the same again (the runner's memory: not decided again)
    assert (quiet.changed, quiet.active, quiet.next_at) == (False, True, row.state.bake_until)
    rig.step(at=71)
    wave = on(rig.desired(), second.id)
    assert len(wave) == 5 and canary_node in wave
    for node in wave:
        rig.commit(node, second, ["applied"], at=72)
    rig.step(at=72)
    rig.step(at=132)
    assert on(rig.desired(), second.id) == rig.nodes
    for node in rig.nodes:
        rig.commit(node, second, ["applied"], at=133)
    rig.step(at=133)
    assert rig.row().state.phase.value == "completed"
    assert rig.events().count("wave.started") >= 4  # first Release's, then three waves


def test_a_failed_ack_rolls_back_with_a_new_release_only_to_the_exposed_nodes(rig: Rig) -> None:
    first = completed_first(rig)
    second = rig.release(2)
    rig.step(at=10)
    [canary_node] = on(rig.desired(), second.id)
    rig.commit(canary_node, second, ["applied", "failed"], at=11)
    moved = rig.step(at=11)
    assert [r.sequence for r in moved.released] == [3]
    row = rig.row()
    assert row.state.phase.value == "rolled_back"
    assert row.state.rollback is not None and row.state.rollback.sequence == 3
    rollback = moved.released[0]
    assert rollback.previous_id == second.id
    assert [c.digest for c in rollback.configsets] == [c.digest for c in first.configsets]
    desired = rig.desired()
    assert on(desired, rollback.id) == [canary_node]
    assert on(desired, first.id) == sorted(set(rig.nodes) - {canary_node})
    assert on(desired, second.id) == []
    audit = rig.audit()
    breached = [d for _, a, d in audit if a == "guard.breached"]
    assert breached and any(r["status"] == "breach" for r in breached[0]["readings"])
    assert ("center:rollout", "release.created") in [(a, b) for a, b, _ in audit]
    found = get_release(rig.engine, rollback.id)
    assert found is not None and found[0].created_by == "center:rollout"


def test_the_next_release_after_a_rollback_starts_from_the_rollback_release(rig: Rig) -> None:
    completed_first(rig)
    second = rig.release(2)
    rig.step(at=10)
    [canary_node] = on(rig.desired(), second.id)
    rig.commit(canary_node, second, ["failed"], at=11)
    rollback = rig.step(at=11).released[0]
    third = rig.release(4)
    assert third.sequence == 4
    rig.step(at=20)
    row = rig.row()
    assert row.release_id == third.id and row.state.stable is not None
    assert row.state.stable.id == rollback.id  # S4


def test_a_new_release_mid_rollout_supersedes_it_and_keeps_its_targets(rig: Rig) -> None:
    completed_first(rig)
    second = rig.release(2)
    rig.step(at=10)
    [canary_node] = on(rig.desired(), second.id)
    third = rig.release(3)
    rig.step(at=12)
    desired = rig.desired()
    assert on(desired, third.id) == [canary_node]  # S5: carried, the same canary (W2)
    assert on(desired, second.id) == []
    with reader(rig.engine).connect() as conn:
        old = store.by_release(conn, second.id)
    assert old is not None and old.phase == store.SUPERSEDED
    assert "rollout.superseded" in rig.events()


def test_manual_approval_holds_until_an_approve_command_is_applied(opened: Opened) -> None:
    rig = Rig.create(opened, nodes=10, policy=canary(approval="manual"))
    completed_first(rig)
    second = rig.release(2)
    rig.step(at=10)
    [canary_node] = on(rig.desired(), second.id)
    rig.commit(canary_node, second, ["applied"], at=11)
    rig.step(at=11)
    rig.step(at=200)
    assert rig.row().state.phase.value == "awaiting_approval"
    assert len(on(rig.desired(), second.id)) == 1
    with rig.engine.begin() as conn:
        command_id = store.queue(conn, GROUP, second.id, Command("approve", "alice", "ok"), T0)
    rig.step(at=201)
    assert len(on(rig.desired(), second.id)) == 5
    with reader(rig.engine).connect() as conn:
        assert store.outcome(conn, command_id) == "applied"
    granted = [(actor, d) for actor, a, d in rig.audit() if a == "approval.granted"]
    assert granted and granted[0][0] == "alice" and granted[0][1]["reason"] == "ok"


def test_a_command_that_no_longer_applies_is_marked_with_the_reason(rig: Rig) -> None:
    completed_first(rig)
    second = rig.release(2)
    rig.step(at=10)
    with rig.engine.begin() as conn:
        command_id = store.queue(conn, GROUP, second.id, Command("approve", "bob"), T0)
    rig.step(at=11)
    with reader(rig.engine).connect() as conn:
        outcome = store.outcome(conn, command_id)
    assert outcome is not None and "nothing awaits approval" in outcome
    assert "command.rejected" in rig.events()


def test_a_command_for_a_superseded_rollout_is_rejected_and_audited(rig: Rig) -> None:
    completed_first(rig)
    second = rig.release(2)
    rig.step(at=10)
    with rig.engine.begin() as conn:
        command_id = store.queue(conn, GROUP, second.id, Command("pause", "carol", "wait"), T0)
    rig.release(3)
    rig.step(at=11)
    with reader(rig.engine).connect() as conn:
        outcome = store.outcome(conn, command_id)
    assert outcome is not None and "superseded" in outcome
    [(actor, details)] = [(a, d) for a, action, d in rig.audit() if action == "command.rejected"]
    assert actor == "carol" and details["release"] == second.id and details["command"] == "pause"


def test_app_metrics_read_incrementally_still_catch_a_breach(opened: Opened) -> None:
    rig = Rig.create(opened, nodes=10, policy=canary(guards=(("error_rate", 0.1),)))
    memory = MetricMemory()
    first = rig.release(1)
    rig.step(at=0, memory=memory)
    for node in rig.nodes:
        rig.commit(node, first, ["applied"])
        rig.metric(node, "error_rate", 0.0, at=0)
    rig.step(at=1, memory=memory)
    assert rig.row().state.phase.value == "completed"
    second = rig.release(2)
    rig.step(at=10, memory=memory)
    [canary_node] = on(rig.desired(), second.id)
    rig.commit(canary_node, second, ["applied"], at=11)
    rig.step(at=11, memory=memory)
    assert rig.row().state.phase.value == "waving"  # G5: no value yet, the wave waits
    rig.metric(canary_node, "error_rate", 0.0, at=12)
    rig.step(at=12, memory=memory)
    assert rig.row().state.phase.value == "baking"
    seen = memory.last_id
    rig.metric(canary_node, "error_rate", 0.5, at=13)  # the same process, a newer value
    moved = rig.step(at=13, memory=memory)
    assert memory.last_id > seen  # read only what was stored since the last decision
    newest = memory.rows[(canary_node, 100, 1, "error_rate")]
    assert newest[3]["value"] == 0.5  # one row per process and metric: the newest
    assert [r.sequence for r in moved.released] == [3]  # breached: rolled back
    [breach] = [d for _, a, d in rig.audit() if a == "guard.breached"]
    assert [(r["signal"], r["value"]) for r in breach["readings"]] == [("error_rate", 0.5)]


def test_a_write_from_a_stale_read_changes_nothing(rig: Rig) -> None:
    rig.release(1)
    rig.step(at=0)
    row = rig.row()
    moved = rig.step(at=1)  # nothing committed: no change, no write
    assert not moved.changed and rig.row().revision == row.revision
    stale = store.RolloutRow(row.id, row.state, row.readings, row.revision - 1, None, T0)
    with rig.engine.begin() as conn:
        from konorkestra.rollout import Decision

        assert not store.write(conn, stale, Decision(row.state, (), {}), T0)
    assert rig.row().revision == row.revision


def test_every_decision_is_audited_with_the_release(rig: Rig) -> None:
    first = rig.release(1)
    rig.step(at=0)
    with reader(rig.engine).connect() as conn:
        rows = conn.execute(
            sa.select(schema.audit.c.action, schema.audit.c.details).where(
                schema.audit.c.action.like("rollout.%")
            )
        ).all()
    assert [(a, d["release"]) for a, d in rows] == [("rollout.started", first.id)]
