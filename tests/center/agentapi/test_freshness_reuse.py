"""When a freshness statement is re-sent or signed anew, rule by rule
(``konorkestra/center/agentapi/freshreuse.py``). The time is passed in: no clock, no keys.
"""

from __future__ import annotations

from konorkestra.center.agentapi.freshreuse import (
    MEMORY_CAP,
    LatestKey,
    Sent,
    latest_key,
    may_resend,
    must_forget,
)
from konorkestra.center.releases.desired import LatestRow
from konorkestra.model.types import Digest, GroupName, ReleaseId, Sequence

A, B = Digest("sha256:" + "ab" * 32), Digest("sha256:" + "cd" * 32)
LATEST: LatestKey = (("checkout", 4, A), ("search", 1, B))
REUSE = 30.0


def sent(latest: LatestKey = LATEST, at: float = 100.0, node: str = "node-01") -> Sent:
    return Sent(node, latest, at, b"bundle")


def resend(last: Sent | None, latest: LatestKey = LATEST, now: float = 110.0) -> bool:
    return may_resend(last, "node-01", latest, now=now, reuse=REUSE)


def test_F1_a_node_never_sent_a_statement_gets_a_new_one() -> None:
    assert resend(None) is False


def test_F2_same_latest_releases_and_younger_than_reuse_is_resent() -> None:
    assert resend(sent(at=100.0), now=100.0) is True
    assert resend(sent(at=100.0), now=129.9) is True
    assert resend(sent(latest=()), latest=()) is True  # a node whose Groups have no Release yet


def test_F3_any_change_in_the_latest_releases_signs_anew() -> None:
    last = sent()
    assert resend(last, (("checkout", 5, A), ("search", 1, B))) is False  # sequence
    assert resend(last, (("checkout", 4, B), ("search", 1, B))) is False  # digest
    assert resend(last, (("checkout", 4, A),)) is False  # a Group less
    assert resend(last, (*LATEST, ("web", 1, A))) is False  # a Group more
    assert resend(last, (("search", 1, B), ("checkout", 4, A))) is False  # another order


def test_F3_the_key_is_group_sequence_and_statement_digest_in_order() -> None:
    rows = [
        LatestRow(GroupName("checkout"), Sequence(4), ReleaseId("checkout-4-abababababababab"), A),
        LatestRow(GroupName("search"), Sequence(1), ReleaseId("search-1-cdcdcdcdcdcdcdcd"), B),
    ]
    assert latest_key(rows) == LATEST


def test_F4_at_reuse_age_or_older_signs_anew() -> None:
    assert resend(sent(at=100.0), now=130.0) is False
    assert resend(sent(at=100.0), now=1000.0) is False


def test_F5_another_nodes_statement_is_never_resent() -> None:
    assert resend(sent(node="node-02")) is False


def test_F6_the_memory_starts_over_when_full() -> None:
    assert must_forget(MEMORY_CAP - 1) is False
    assert must_forget(MEMORY_CAP) is True
    assert must_forget(2, cap=3) is False and must_forget(3, cap=3) is True
