"""A node's state folded from its reports, rule by rule (``konorkestra/center/nodes/fold.py``).

No database: report records in, a :class:`NodeState` out. The last tests check
the store's edge (:func:`konorkestra.center.nodes.state.report_record`) on the
bodies ``node_reports`` rows hold (``konorkestra/center/agentapi/reports.py``).
"""

from __future__ import annotations

import datetime as dt

from konorkestra.center.nodes.fold import (
    Ack,
    AckReport,
    AppliedReport,
    Committed,
    DeliveryReport,
    MetricReport,
    NodeState,
    OtherReport,
    Process,
    RefusedReport,
    ReportRecord,
    StaleReport,
    epoch_time,
    fold_node_state,
)
from konorkestra.center.nodes.state import report_record
from konorkestra.model.types import GroupName, ReleaseId

G = GroupName("checkout")
T1 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T2 = T1 + dt.timedelta(minutes=1)
APP = Process(42, 1000, 1000, "/usr/bin/app", 7)


def rid(n: int) -> ReleaseId:
    return ReleaseId(f"checkout-{n}-{n:016x}")


def applied(seq: int, at: dt.datetime | None = T1, group: str = G) -> AppliedReport:
    return AppliedReport(GroupName(group), rid(seq), seq, at)


def delivery(seq: int, proc: Process = APP, client: str | None = "web") -> DeliveryReport:
    return DeliveryReport(G, proc, client, rid(seq), seq, "watch", T1)


def ack(seq: int, status: str = "applied", proc: Process = APP) -> AckReport:
    return AckReport(G, proc, "web", rid(seq), status, None, T2)


def fold(*records: ReportRecord, groups: tuple[str, ...] = ()) -> NodeState:
    return fold_node_state(records, groups)


def test_N1_every_group_of_the_node_appears_reported_or_not() -> None:
    state = fold(applied(1), groups=("checkout", "search"))
    search = state.group("search")
    assert search is not None
    assert search.to_json() == {"group": "search", "applied": None, "stale": None,
                                "refused": None, "processes": []}  # fmt: skip


def test_N2_a_group_any_record_names_appears_even_one_the_node_has_left() -> None:
    state = fold(OtherReport(GroupName("old")), applied(1, group="gone"), groups=("checkout",))
    assert [g.group for g in state.groups] == ["checkout", "gone", "old"]


def test_N3_records_without_a_group_are_not_part_of_the_view() -> None:
    state = fold(OtherReport(None), AppliedReport(None, rid(1), 1, T1))
    assert state.groups == ()


def test_N4_groups_are_listed_by_name() -> None:
    state = fold(applied(1, group="web"), applied(1, group="api"), groups=("db",))
    assert [g.group for g in state.groups] == ["api", "db", "web"]


def test_N5_the_committed_release_is_the_highest_sequence() -> None:
    g = fold(applied(3), applied(2)).group(G)
    assert g is not None and g.applied == Committed(rid(3), 3, T1)


def test_N5_of_equal_sequences_the_newest_record_wins() -> None:
    g = fold(applied(3, at=T1), applied(3, at=T2)).group(G)
    assert g is not None and g.applied is not None and g.applied.at == T2


def test_N6_stale_and_refused_are_the_newest_whatever_their_sequence() -> None:
    newer = RefusedReport(G, "checkout-2-x", 2, "Rollback", "older than applied", T2)
    g = fold(
        StaleReport(G, True),
        RefusedReport(G, "checkout-5-y", 5, "BadSignature", "does not verify", T1),
        newer,
        StaleReport(G, False),
    ).group(G)
    assert g is not None and g.stale is False
    assert g.refused is not None and (g.refused.code, g.refused.sequence) == ("Rollback", 2)


def test_N7_a_process_is_its_pid_and_start_time() -> None:
    restarted = Process(42, 1000, 1000, "/usr/bin/app", 8)
    g = fold(delivery(1), delivery(1, proc=restarted)).group(G)
    assert g is not None and [p.process.start_time for p in g.processes] == [7, 8]


def test_N7_identity_from_the_first_record_client_from_the_newest_named() -> None:
    same_key_other_exe = Process(42, 0, 0, "/usr/bin/other", 7)
    g = fold(
        delivery(1, client="web"),
        delivery(2, proc=same_key_other_exe, client="cli"),
        delivery(3, client=None),
    ).group(G)
    assert g is not None
    [p] = g.processes
    assert p.process == APP and p.client == "cli" and p.sequence == 3


def test_N8_delivery_and_ack_each_keep_their_newest_and_leave_the_other() -> None:
    g = fold(delivery(1), ack(1, "failed"), delivery(2), ack(2)).group(G)
    assert g is not None
    [p] = g.processes
    assert (p.release, p.sequence, p.via, p.seen_at) == (rid(2), 2, "watch", T1)
    assert p.ack == Ack(rid(2), "applied", None, T2)
    g = fold(ack(1)).group(G)
    assert g is not None and g.processes[0].release is None and g.processes[0].ack is not None


def test_N9_processes_are_listed_by_pid_then_exe() -> None:
    procs = [Process(9, 0, 0, "/b", 1), Process(3, 0, 0, None, 1), Process(9, 0, 0, "/a", 2)]
    g = fold(*(delivery(1, proc=p) for p in procs)).group(G)
    assert g is not None
    assert [(p.process.pid, p.process.exe) for p in g.processes] == [
        (3, None),
        (9, "/a"),
        (9, "/b"),
    ]


def test_N10_newest_metric_per_process_kept_but_not_in_the_json() -> None:
    other = Process(43, 1000, 1000, "/usr/bin/app", 7)
    g = fold(
        delivery(1),
        MetricReport(G, APP, "web", "error_rate", 0.5, T1),
        MetricReport(G, APP, "web", "error_rate", 0.01, T2),
        MetricReport(G, APP, "web", "latency", 12.0, T1),
        MetricReport(G, other, None, "error_rate", 0.2, T1),
    ).group(G)
    assert g is not None
    assert [(m.process.pid, m.metric, m.value) for m in g.metrics] == [
        (42, "error_rate", 0.01),
        (42, "latency", 12.0),
        (43, "error_rate", 0.2),
    ]
    assert [p.process.pid for p in g.processes] == [42]  # 43 was seen only through metrics
    assert "metrics" not in g.to_json()


def test_N11_agent_times_missing_or_zero_are_none_and_json_says_z() -> None:
    assert epoch_time(0) is None and epoch_time(None) is None and epoch_time("1") is None
    assert epoch_time(1767225600.5) == dt.datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=dt.UTC)
    g = fold(applied(1, at=epoch_time(1767225600.5)), applied(2, at=None)).group(G)
    assert g is not None and g.to_json()["applied"] == {
        "release": rid(2),
        "sequence": 2,
        "at": None,
    }
    g = fold(applied(1, at=epoch_time(1767225600.5))).group(G)
    assert g is not None and g.to_json()["applied"] == {
        "release": rid(1),
        "sequence": 1,
        "at": "2026-01-01T00:00:00.500000Z",
    }


def test_N12_to_json_is_the_nodes_api_state_key_for_key() -> None:
    state = fold(
        applied(2),
        RefusedReport(G, "checkout-3-y", 3, "BadSignature", "does not verify", None),
        delivery(2),
        AckReport(G, APP, "web", rid(2), "failed", "ValueError: no", T2),
        StaleReport(G, True),
    )
    assert state.to_json() == {
        "state": [
            {
                "group": "checkout",
                "applied": {"release": rid(2), "sequence": 2, "at": "2026-01-01T00:00:00Z"},
                "stale": True,
                "refused": {
                    "release": "checkout-3-y",
                    "sequence": 3,
                    "code": "BadSignature",
                    "reason": "does not verify",
                    "at": None,
                },
                "processes": [
                    {
                        "pid": 42,
                        "uid": 1000,
                        "gid": 1000,
                        "exe": "/usr/bin/app",
                        "start_time": 7,
                        "client": "web",
                        "release": rid(2),
                        "sequence": 2,
                        "seen_at": "2026-01-01T00:00:00Z",
                        "via": "watch",
                        "ack": {
                            "release": rid(2),
                            "status": "failed",
                            "error": "ValueError: no",
                            "at": "2026-01-01T00:01:00Z",
                        },
                    },
                ],
            }
        ]
    }


def test_the_edge_turns_each_stored_body_into_its_record() -> None:
    proc = {"pid": 42, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app", "start_time": 7}
    applied_row = {"group": "checkout", "release": "checkout-2-x", "sequence": 2,
                   "digest": None, "at": 1.0}  # fmt: skip
    ack_row = {"kind": "ack", "at": 4.0, "group": "checkout", "process": proc,
               "client": "web", "release": "checkout-2-x", "status": "failed",
               "error": "ValueError: no"}  # fmt: skip
    metric_row = {"kind": "report", "at": 5.0, "group": "checkout", "process": proc,
                  "client": None, "metric": "error_rate", "value": 1.0}  # fmt: skip
    assert report_record("applied", "checkout", applied_row) == AppliedReport(
        G, ReleaseId("checkout-2-x"), 2, epoch_time(1.0)
    )
    assert report_record("ack", "checkout", ack_row) == AckReport(
        G, APP, "web", ReleaseId("checkout-2-x"), "failed", "ValueError: no", epoch_time(4.0)
    )
    assert report_record("metric", "checkout", metric_row) == MetricReport(
        G, APP, None, "error_rate", 1.0, epoch_time(5.0)
    )
    assert report_record("stale", "checkout", {"group": "checkout", "stale": True}) == (
        StaleReport(G, True)
    )
    assert report_record("error", None, {"kind": "sync"}) == OtherReport(None)
    assert report_record("dropped", "checkout", {"dropped": 3}) == OtherReport(G)
