"""``konorctl groups``' pure parts: which Release is stable or in flight, and the watch loop."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

from konorkestra.cli.groups_view import group_line, group_view, in_flight_of, stable_of
from konorkestra.cli.watch import watch

R1, R2, R3 = ({"id": f"checkout-{n}-ab", "sequence": n} for n in (1, 2, 3))


def rollout(phase: str, **extra: Any) -> dict[str, Any]:
    return {"group": "checkout", "release": R2, "stable": R1, "rollback": None, "phase": phase,
            "step": 1, "steps": 3, **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("phase", "rollback", "stable", "in_flight"),
    [
        ("waving", None, R1, R2),
        ("baking", None, R1, R2),
        ("awaiting_approval", None, R1, R2),
        ("paused", None, R1, R2),
        ("rolling_back", None, R1, R2),
        ("completed", None, R2, None),  # S4: the new Release once completed
        ("rolled_back", R3, R3, None),  # S4: the rollback Release once rolled back
        ("aborted", None, R1, None),
    ],
)
def test_stable_and_in_flight_follow_the_engine_rule_s4(
    phase: str, rollback: Any, stable: Any, in_flight: Any
) -> None:
    r = rollout(phase, rollback=rollback)
    assert stable_of(r, latest=R3) == stable["id"]
    assert in_flight_of(r) == (None if in_flight is None else in_flight["id"])


def test_a_group_without_a_rollout_has_its_latest_release_as_stable() -> None:
    assert stable_of(None, {"id": "old-1-aa"}) == "old-1-aa" and in_flight_of(None) is None
    assert stable_of(rollout("aborted", stable=None), None) is None  # a first Release aborted


def test_a_line_counts_active_members_and_the_latest_releases_convergence() -> None:
    nodes = [
        {"id": "n1", "name": "a", "groups": ["checkout"], "status": "active"},
        {"id": "n2", "name": "b", "groups": ["checkout", "web"], "status": "active"},
        {"id": "n3", "name": "c", "groups": ["checkout"], "status": "revoked"},
        {"id": "n4", "name": "d", "groups": ["web"], "status": "active"},
    ]
    convergence = {"nodes": {"committed": 1, "targeted": 2}}
    line = group_line({"name": "checkout"}, rollout("baking"), nodes, convergence)
    assert line.to_json() == {
        "group": "checkout", "stable": R1["id"], "in_flight": R2["id"], "phase": "baking",
        "step": "2/3", "nodes": 2, "converged": 1, "targeted": 2,
    }  # fmt: skip
    bare = group_line({"name": "web"}, None, nodes, None)
    assert (bare.phase, bare.converged, bare.nodes) == (None, None, 2)


def test_show_marks_each_node_on_the_stable_or_the_in_flight_release() -> None:
    on_new = {"release": R2["id"], "sequence": 2}
    state = {"group": "checkout", "applied": on_new, "stale": True, "refused": None}
    node = {"id": "n1", "name": "web-1", "state": [state]}
    old = {"id": "n2", "name": "web-2", "state": [{"group": "checkout", "applied": None}]}
    policy = {"name": "canary", "strategy": "canary", "approval": "manual", "onFailure": "rollback"}
    detail = {"group": {"name": "checkout", "defined": True, "commit": "f" * 40,
                        "configsets": [{"name": "api", "version": 3}]},
              "rollout": rollout("baking", policy=policy), "nodes": [node, old]}  # fmt: skip
    out = Console(file=io.StringIO(), width=200)
    out.print(group_view(detail))
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "in flight   checkout-2-ab  baking, step 2/3" in text
    [web1] = [line for line in text.splitlines() if "web-1" in line]
    assert "checkout-2-ab" in web1 and "in flight" in web1 and "yes" in web1
    [web2] = [line for line in text.splitlines() if "web-2" in line]
    assert "none" in web2
    assert "nodes (2)" in text and "more" not in text

    out = Console(file=io.StringIO(), width=200)
    out.print(group_view({**detail, "nodes_total": 250}))
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "nodes (250)" in text and "… and 248 more (`konorctl nodes`" in text


def _run(values: list[int], **kw: Any) -> tuple[int, list[str]]:
    """:func:`watch` over ``values`` (then Ctrl-C), piped, without waiting; code and lines."""
    from click.testing import CliRunner

    left = iter(values)

    def fetch() -> int:
        try:
            return next(left)
        except StopIteration:
            raise KeyboardInterrupt from None

    with CliRunner().isolation() as (stdout, _, _):
        code = watch(fetch, lambda v: Text(f"value {v}"), interval=0.0,
                     out=Console(file=io.StringIO(), width=80), sleep=lambda _: None,
                     clock=lambda: "12:00:00", **kw)  # fmt: skip
        return code, stdout.getvalue().decode().splitlines()


def test_a_piped_watch_prints_only_changes_and_ctrl_c_is_exit_0() -> None:
    code, printed = _run([1, 1, 2, 2, 2, 3])
    assert code == 0
    assert printed == ["-- 12:00:00", "value 1", "-- 12:00:00", "value 2", "-- 12:00:00",
                       "value 3"]  # fmt: skip
    code, printed = _run([1, 1, 2], as_json=lambda v: {"v": v})
    assert (code, printed) == (0, ['{"v":1}', '{"v":2}'])
