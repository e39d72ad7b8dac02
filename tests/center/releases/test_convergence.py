"""A Release's convergence, rule by rule (``konorkestra/center/releases/convergence.py``).

No database: members and report records in, counts out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

from konorkestra.center.nodes.fold import (
    AckReport,
    AppliedReport,
    DeliveryReport,
    NodeState,
    Process,
    RefusedReport,
    ReportRecord,
    StaleReport,
    fold_node_state,
)
from konorkestra.center.releases import convergence
from konorkestra.center.releases.convergence import Convergence, Member, Target, converge
from konorkestra.model.types import GroupName, NodeId, ReleaseId

G = GroupName("checkout")
T1 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def rid(n: int) -> ReleaseId:
    return ReleaseId(f"checkout-{n}-{n:016x}")


def target(seq: int = 2, latest: bool = True) -> Target:
    return Target(rid(seq), G, seq, latest)


def applied(seq: int, group: str = G) -> AppliedReport:
    return AppliedReport(GroupName(group), rid(seq), seq, T1)


def proc(pid: int) -> Process:
    return Process(pid, 1000, 1000, "/usr/bin/app", pid * 10)


def ack(seq: int, pid: int, status: str = "applied") -> AckReport:
    return AckReport(G, proc(pid), "web", rid(seq), status, None, T1)


def delivery(seq: int, pid: int) -> DeliveryReport:
    return DeliveryReport(G, proc(pid), "web", rid(seq), seq, "watch", T1)


def count(t: Target, nodes: dict[str, list[ReportRecord]], *extra: Member) -> Convergence:
    states: dict[NodeId, NodeState] = {
        NodeId(n): fold_node_state(records, (G,)) for n, records in nodes.items()
    }
    members = [Member(NodeId(n)) for n in nodes] + list(extra)
    return converge(t, members, states)


def test_C1_revoked_nodes_and_nodes_outside_the_group_count_nowhere() -> None:
    states = {NodeId(n): fold_node_state([applied(2)], (G,)) for n in ("a", "b", "c")}
    members = [Member(NodeId("a")), Member(NodeId("b"), revoked=True),
               Member(NodeId("c"), in_group=False)]  # fmt: skip
    c = converge(target(), members, states)
    assert c.nodes.targeted == 1 and c.nodes.committed == 1


def test_C2_a_node_is_on_newer_or_older_by_the_folded_committed_release() -> None:
    # n1 applied 2 after 3 (N5: the highest sequence wins), so it is newer than 2.
    c = count(target(2, latest=False), {"n1": [applied(3), applied(2)], "n2": [applied(2)]})
    assert (c.nodes.newer, c.nodes.committed) == (1, 1)
    d = count(target(2), {"n1": [applied(1)], "n2": []})
    assert (d.nodes.committed, d.nodes.behind) == (0, 2)  # older and none alike


def test_C3_the_latest_targets_every_member_an_older_only_the_nodes_on_it() -> None:
    nodes: dict[str, list[ReportRecord]] = {"on": [applied(2)], "old": [applied(1)],
                                            "none": [], "new": [applied(3)]}  # fmt: skip
    latest = count(target(2), nodes)
    assert (latest.nodes.targeted, latest.nodes.newer) == (3, 1)
    older = count(target(2, latest=False), nodes)
    assert (older.nodes.targeted, older.nodes.committed, older.nodes.behind) == (1, 1, 0)
    assert older.nodes.newer == 1  # moved on: not committed to the old Release


def test_C3_with_a_rollout_only_the_nodes_it_tells_and_those_on_it_are_targeted() -> None:
    nodes: dict[str, list[ReportRecord]] = {"canary": [applied(1)], "on": [applied(2)],
                                            "stable": [applied(1)], "none": []}  # fmt: skip
    wave = dataclasses.replace(target(2), targets=frozenset({NodeId("canary")}))
    c = count(wave, nodes)
    assert (c.nodes.targeted, c.nodes.committed, c.nodes.behind) == (2, 1, 1)


def test_C4_targeted_is_committed_plus_behind() -> None:
    c = count(target(2), {"a": [applied(2)], "b": [applied(1)], "c": []}, Member(NodeId("d")))
    n = c.nodes
    assert (n.targeted, n.committed, n.behind) == (4, 1, 3)


def test_C5_refused_are_members_whose_newest_refusal_names_it_and_are_not_on_it() -> None:
    def refused(release: str | None, seq: int | None) -> RefusedReport:
        return RefusedReport(G, release, seq, "BadSignature", "no", T1)

    c = count(target(2), {"by-id": [applied(1), refused(rid(2), 2)],
                          "by-seq": [refused(None, 2)],
                          "other": [refused(rid(3), 3)],
                          "older-refusal": [refused(rid(2), 2), refused(rid(1), 1)],
                          "took-it-later": [refused(rid(2), 2), applied(2)]})  # fmt: skip
    assert c.nodes.refused == 2
    old = count(target(2, latest=False), {"r": [applied(1), refused(rid(2), 2)]})
    assert (old.nodes.refused, old.nodes.targeted) == (1, 0)


def test_C6_stale_are_targeted_nodes_whose_newest_flag_is_true() -> None:
    c = count(target(2), {"a": [StaleReport(G, True)],
                          "b": [StaleReport(G, True), StaleReport(G, False)],
                          "c": [applied(2), StaleReport(G, True)]})  # fmt: skip
    assert c.nodes.stale == 2
    old = count(target(2, latest=False), {"x": [applied(1), StaleReport(G, True)]})
    assert old.nodes.stale == 0  # not targeted


def test_C7_processes_count_by_their_newest_ack_on_targeted_nodes() -> None:
    c = count(target(2), {
        "a": [applied(2), delivery(2, 1), ack(2, 1), delivery(2, 2), ack(2, 2, "failed")],
        "b": [applied(2), delivery(2, 3), ack(2, 3, "failed"), ack(2, 3)],  # retried: applied
        "c": [applied(1), delivery(1, 4), ack(1, 4, "failed")],  # acked another release
        "d": [applied(2), delivery(2, 5)],  # delivered, no answer yet
    })  # fmt: skip
    assert c.processes.to_json() == {"delivered": 4, "applied": 2, "failed": 1}
    assert c.nodes.failed == 1
    old = count(target(1, latest=False), {"x": [applied(2), ack(1, 1, "failed")]})
    assert old.processes.failed == 0 and old.nodes.failed == 0


def test_C8_to_json_is_the_api_object_key_for_key() -> None:
    c = count(target(2), {"a": [applied(2), delivery(2, 1), ack(2, 1, "failed")], "b": []})
    assert c.to_json() == {
        "release": rid(2), "group": "checkout", "sequence": 2, "latest": True,
        "nodes": {"targeted": 2, "committed": 1, "behind": 1, "newer": 0, "refused": 0,
                  "stale": 0, "failed": 1},
        "processes": {"delivered": 1, "applied": 0, "failed": 1},
        "partial": False,
    }  # fmt: skip
    assert c.summary() == "1/2 committed, 0 acked, 1 failed"


def test_every_stated_rule_has_a_test() -> None:
    doc = convergence.__doc__ or ""
    stated = set(re.findall(r"\*\*(C\d+)\*\*", doc))
    source = Path(__file__).read_text()
    tested = set(re.findall(r"def test_(C\d+)_", source))
    assert stated and stated == tested
