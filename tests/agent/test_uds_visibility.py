"""visibility.py: who saw what, bounded, drained in batches."""

from __future__ import annotations

from konorkestra.agent.peers import PeerIdentity
from konorkestra.agent.visibility import Visibility, event_to_json


def _peer(pid: int, start: int = 100) -> PeerIdentity:
    return PeerIdentity(pid=pid, uid=1000, gid=1000, exe="/usr/bin/app", start_time=start)


def test_event_log_is_bounded_and_counts_what_it_dropped() -> None:
    vis = Visibility(max_events=3, clock=lambda: 5.0)
    for seq in range(1, 6):
        vis.delivered(_peer(1), "checkout", f"checkout-{seq}", seq, via="watch")
    first = vis.drain(max_items=2)
    assert [e.release for e in first.events] == ["checkout-3", "checkout-4"]  # type: ignore[union-attr]
    assert first.dropped == 2
    rest = vis.drain()
    assert [e.release for e in rest.events] == ["checkout-5"]  # type: ignore[union-attr]
    assert rest.dropped == 0 and vis.pending() == 0


def test_repeated_gets_of_the_same_release_are_one_delivery() -> None:
    vis = Visibility()
    for _ in range(100):
        vis.delivered(_peer(1), "checkout", "checkout-1", 1, via="get")
    vis.delivered(_peer(1), "checkout", "checkout-2", 2, via="watch")
    assert [e.kind for e in vis.drain().events] == ["delivery", "delivery"]


def test_a_reused_pid_is_a_different_process() -> None:
    vis = Visibility()
    vis.delivered(_peer(7, start=100), "checkout", "checkout-1", 1, via="get")
    vis.delivered(_peer(7, start=999), "checkout", "checkout-1", 1, via="get")
    assert len(vis.snapshot()) == 2


def test_view_table_evicts_least_recently_updated() -> None:
    vis = Visibility(max_views=2)
    vis.delivered(_peer(1), "g", "g-1", 1, via="get")
    vis.delivered(_peer(2), "g", "g-1", 1, via="get")
    vis.acked(_peer(1), "g", "g-1", "applied")  # touches process 1
    vis.delivered(_peer(3), "g", "g-1", 1, via="get")
    assert sorted(v.peer.pid for v in vis.snapshot()) == [1, 3]


def test_ack_and_report_json_for_the_center() -> None:
    vis = Visibility(clock=lambda: 42.0)
    vis.acked(_peer(1), "checkout", "checkout-4", "failed", "ValueError: x", client="web")
    vis.reported(_peer(1), "checkout", "error_rate", 0.5)
    ack, report = (event_to_json(e) for e in vis.drain().events)
    assert ack == {
        "kind": "ack",
        "at": 42.0,
        "process": {"pid": 1, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app", "start_time": 100},
        "client": "web",
        "group": "checkout",
        "release": "checkout-4",
        "status": "failed",
        "error": "ValueError: x",
    }
    assert (report["metric"], report["value"]) == ("error_rate", 0.5)
    (view,) = vis.snapshot()
    assert (view.ack_status, view.ack_error, view.client) == ("failed", "ValueError: x", "web")
