"""Stored state rules S1, S4, and the engine's purity (imports only the model)."""

from __future__ import annotations

import ast
import datetime as dt
import json
from pathlib import Path

import pytest

from konorkestra.rollout import Command, RolloutState, StateError, decide, rollback_signed
from tests.rollout.world import NEW, NEWER, OLD, World, at, begin, make_nodes, make_policy

PACKAGE = Path(__file__).resolve().parents[2] / "konorkestra" / "rollout"


def test_S1_state_round_trips_through_json_with_absolute_deadlines() -> None:
    world = World(make_nodes(20))
    policy = make_policy(approval="manual")
    d = begin(world, policy)
    world.converge(d, at(1))
    d = decide(d.state, policy, world.fleet(), at(1))
    row = json.dumps(d.state.to_json())
    restored = RolloutState.from_json(json.loads(row))
    assert restored == d.state
    assert json.loads(row)["bake_until"] == "2025-03-01T12:01:01+00:00"
    # a restart 30 s later resumes with the 30 s that were left
    later = decide(restored, policy, world.fleet(), at(31))
    assert later.state.phase.value == "baking"
    assert decide(restored, policy, world.fleet(), at(61)).state.phase.value == "awaiting_approval"
    approved = decide(
        decide(restored, policy, world.fleet(), at(61)).state,
        policy,
        world.fleet(),
        at(62),
        [Command("approve", "alice", "ok")],
    )
    assert (
        RolloutState.from_json(json.loads(json.dumps(approved.state.to_json()))) == approved.state
    )


def test_S1_events_serialize() -> None:
    world = World(make_nodes(4))
    d = begin(world, make_policy())
    assert json.loads(json.dumps([e.to_json() for e in d.events]))[0]["kind"] == "rollout.started"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phase", "sideways"),
        ("step", "1"),
        ("targeted", "n1"),
        ("bake_until", "2025-01-01T00:00:00"),
        ("release", None),
        ("stable", {"id": "x"}),
    ],
)
def test_S1_a_malformed_state_is_refused(field: str, value: object) -> None:
    data = begin(World(make_nodes(4)), make_policy()).state.to_json()
    data[field] = value
    with pytest.raises(StateError):
        RolloutState.from_json(data)


def test_S1_naive_times_are_refused() -> None:
    state = begin(World(make_nodes(4)), make_policy()).state
    naive = dt.datetime(2025, 1, 1)
    with pytest.raises(StateError):
        RolloutState(**{**state.__dict__, "updated_at": naive}).to_json()


def test_S4_the_stable_release_is_the_last_one_that_completed() -> None:
    world = World(make_nodes(4))
    policy = make_policy()
    d = begin(world, policy)
    assert d.state.next_stable() == OLD
    done = decide(d.state, policy, world.fleet(), at(1), [Command("promote", "ops")])
    assert done.state.next_stable() == NEW
    rolling = decide(d.state, policy, world.fleet(), at(1), [Command("abort", "ops")])
    assert rolling.state.next_stable() == OLD
    back = rollback_signed(rolling.state, policy, world.fleet(), at(2), NEWER)
    assert back.state.next_stable() == NEWER


def test_the_engine_imports_only_the_model_and_the_standard_library() -> None:
    allowed_stdlib = {
        "__future__",
        "collections",
        "dataclasses",
        "datetime",
        "enum",
        "hashlib",
        "typing",
    }
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                inside = name.startswith(("konorkestra.model", "konorkestra.rollout"))
                assert inside or top in allowed_stdlib, f"{path.name} imports {name}"
        assert len(path.read_text().splitlines()) < 400, path.name
