"""Rules V1-V5 of :mod:`konorkestra.center.rollouts.status`: what ``rollout status`` shows."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path

from konorkestra.center.rollouts import status as status_module
from konorkestra.center.rollouts.status import status_json, wave_nodes
from konorkestra.center.rollouts.store import RolloutRow
from konorkestra.model.types import GroupName, NodeId, ReleaseId, Sequence
from konorkestra.rollout import (
    Ack,
    Fleet,
    Node,
    NodeReport,
    Phase,
    ProcessId,
    Reading,
    ReleaseRef,
    RolloutState,
    plan,
)
from konorkestra.rollout.waves import effective_steps
from tests.center.rollouts.rig import T0, canary

POLICY = canary(((10, 60), (50, 60), (100, 0)))
OLD = ReleaseRef(ReleaseId("checkout-1-0000000000000001"), Sequence(1))
NEW = ReleaseRef(ReleaseId("checkout-2-0000000000000002"), Sequence(2))
NODES = tuple(Node(NodeId(f"n{i:02d}")) for i in range(10))
FLEET = Fleet(NODES)
GROUP = GroupName("checkout")


def planned(step: int) -> tuple[NodeId, ...]:
    steps = effective_steps(POLICY, first_release=False)
    return plan(GROUP, NODES, steps)[step].nodes


def row(phase: Phase = Phase.WAVING, step: int = 0, targeted: tuple[NodeId, ...] = (),
        **kw: object) -> RolloutRow:  # fmt: skip
    state = RolloutState(GROUP, NEW, OLD, phase, step, tuple(sorted(targeted)), T0, T0)
    state = replace(state, **kw)  # type: ignore[arg-type]
    return RolloutRow(1, state, (), 1, None, T0)


def test_rules_each_have_a_test() -> None:
    doc = status_module.__doc__ or ""
    rules = set(re.findall(r"^(V\d+)\s", doc, re.M))
    source = Path(__file__).read_text()
    assert rules == {"V1", "V2", "V3", "V4", "V5"}
    for rule in rules:
        assert f"def test_{rule}_" in source, rule


def test_V1_waves_split_targets_into_done_current_and_pending() -> None:
    canaries = planned(0)
    extra = NodeId("n09") if "n09" not in canaries else NodeId("n08")  # carried over
    waves = wave_nodes(row(targeted=(*canaries, extra)), POLICY, FLEET)
    assert [w for w, _ in waves] == [0, 1, 2]
    assert sorted(waves[0][1]) == sorted({*canaries, extra})
    added = set(planned(1)) - set(canaries)
    assert set(waves[1][1]) == added - {extra}  # pending: what the plan adds, not yet targeted
    body = status_json(row(targeted=canaries), POLICY, FLEET, T0)
    assert [w["state"] for w in body["waves"]] == ["current", "pending", "pending"]
    done = status_json(row(Phase.COMPLETED, 2, tuple(n.id for n in NODES)), POLICY, FLEET, T0)
    assert [w["state"] for w in done["waves"]] == ["done", "done", "done"]
    assert sum(w["nodes"] for w in done["waves"]) == 10


def test_V2_per_wave_counts_of_commits_acks_and_stale_nodes() -> None:
    [canary_node] = planned(0)
    at = T0 + dt.timedelta(seconds=5)
    p1, p2 = ProcessId(f"{canary_node}/1@1"), ProcessId(f"{canary_node}/2@1")
    report = NodeReport(committed=NEW.id, committed_at=at, watchers=frozenset({p1, p2}),
                        acks=(Ack(p1, NEW.id, "applied", at), Ack(p2, NEW.id, "failed", at),
                              Ack(p2, OLD.id, "applied", at)), stale=True)  # fmt: skip
    fleet = Fleet(NODES, {canary_node: report})
    [wave, *_] = status_json(row(targeted=(canary_node,)), POLICY, fleet, T0)["waves"]
    assert (wave["nodes"], wave["committed"], wave["applied"], wave["failed"], wave["stale"]) == (
        1, 1, 1, 1, 1,
    )  # fmt: skip


def test_V3_nodes_enrolled_targeted_and_on_stable() -> None:
    body = status_json(row(targeted=planned(1)), POLICY, FLEET, T0)
    assert body["nodes"] == {"enrolled": 10, "targeted": 5, "stable": 5}
    gone = status_json(row(targeted=(*planned(0), NodeId("left"))), POLICY, FLEET, T0)
    assert gone["nodes"]["targeted"] == 1  # a node no longer enrolled is not counted
    assert not gone["waiting_for_nodes"]
    done = status_json(row(Phase.COMPLETED, 2, ()), POLICY, FLEET, T0)  # completed before joins
    assert done["nodes"] == {"enrolled": 10, "targeted": 10, "stable": 0}
    empty = status_json(row(), POLICY, Fleet(()), T0)
    assert empty["waiting_for_nodes"] and empty["nodes"]["enrolled"] == 0


def test_V4_time_left_counts_from_now_and_freezes_while_paused() -> None:
    until = T0 + dt.timedelta(seconds=60)
    baking = row(Phase.BAKING, targeted=planned(0), bake_until=until)
    body = status_json(baking, POLICY, FLEET, T0 + dt.timedelta(seconds=15))
    assert body["bake_left_seconds"] == 45.0 and body["wave_deadline_left_seconds"] is None
    over = status_json(baking, POLICY, FLEET, until + dt.timedelta(hours=1))
    assert over["bake_left_seconds"] == 0
    paused = row(Phase.PAUSED, targeted=planned(0), bake_until=until,
                 paused_from=Phase.BAKING, paused_at=T0 + dt.timedelta(seconds=20))  # fmt: skip
    later = status_json(paused, POLICY, FLEET, T0 + dt.timedelta(hours=2))
    assert later["bake_left_seconds"] == 40.0
    waving = row(targeted=planned(0), wave_deadline=T0 + dt.timedelta(minutes=10))
    assert status_json(waving, POLICY, FLEET, T0)["wave_deadline_left_seconds"] == 600.0


def test_V5_guards_are_the_stored_readings() -> None:
    reading = Reading("failed_acks", 0, 2, "breach", "")
    stored = replace(row(targeted=planned(0)), readings=(reading,))
    [guard] = status_json(stored, POLICY, FLEET, T0)["guards"]
    assert guard == {"signal": "failed_acks", "threshold": 0, "value": 2, "status": "breach",
                     "detail": ""}  # fmt: skip
