"""Rules A1-A6 of ``konorkestra.trust.auditchain``, one test each (pure: no Center)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from konorkestra.trust.auditchain import (
    GENESIS,
    AuditChainError,
    ChainChecker,
    ExportRange,
    event_hash,
)
from konorkestra.trust.checkpoint import AuditCheckpoint, CenterIdentity

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
CENTER = CenterIdentity("repo", "main", GENESIS)


def chain(n: int) -> list[dict[str, Any]]:
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        ev = {"seq": seq, "at": f"2026-12-01T00:00:0{seq}Z", "actor": "alice",
              "action": "token.created", "details": {"n": seq}, "prev_hash": prev}  # fmt: skip
        ev["hash"] = prev = event_hash(ev)
        out.append(ev)
    return out


def checker(
    first: dict[str, Any], since: str | None = None, until: str | None = None
) -> ChainChecker:
    return ChainChecker(ExportRange(since, until, first["seq"], first["prev_hash"]))


def checkpoint(ev: dict[str, Any], head: dict[str, Any] | None = None) -> AuditCheckpoint:
    head = head or ev
    return AuditCheckpoint.create(
        center=CENTER, seq=ev["seq"], hash=ev["hash"], head_seq=head["seq"],
        head_hash=head["hash"], now=NOW,
    )  # fmt: skip


def feed(check: ChainChecker, events: list[dict[str, Any]]) -> None:
    for i, ev in enumerate(events):
        check.add(ev, line=i + 2)


def refused(match: str) -> Any:
    return pytest.raises(AuditChainError, match=match)


def test_a_whole_chain_with_its_checkpoint_passes() -> None:
    events = chain(5)
    check = checker(events[0])
    feed(check, events)
    check.finish(checkpoint(events[-1]))
    assert (check.count, check.last_seq, check.last_hash) == (5, 5, events[-1]["hash"])


def test_a1_an_event_missing_a_field_is_named_by_the_seq_expected_there() -> None:
    events = chain(3)
    del events[1]["actor"]
    with refused(r"^event 2 \(line 3\): an event must hold exactly"):
        feed(checker(events[0]), events)
    with refused(r"^event 1 \(line 2\): 'seq' must be an integer"):
        feed(checker(events[0]), [{**events[0], "seq": "1"}])


def test_a2_an_edited_event_breaks_its_hash() -> None:
    events = chain(3)
    events[2]["details"] = {"n": 99}
    with refused(r"^event 3 \(line 4\): content does not match its hash"):
        feed(checker(events[0]), events)


def test_a3_a_gap_or_a_range_that_starts_elsewhere_is_refused() -> None:
    events = chain(4)
    with refused(r"^event 3 \(line 3\): expected event 2 here"):
        feed(checker(events[0]), [events[0], events[2]])
    with refused(r"range starts at event 3, the header at 2"):
        feed(checker(events[1], since="2"), events[1:])


def test_a4_a_rehashed_event_on_another_chain_is_refused() -> None:
    events = chain(3)
    forged = {**events[1], "prev_hash": "sha256:" + "1" * 64}
    forged["hash"] = event_hash(forged)
    with refused(r"^event 2 \(line 3\): prev_hash is not the previous event's hash"):
        feed(checker(events[0]), [events[0], forged])


def test_a5_events_outside_a_time_range_are_refused() -> None:
    events = chain(4)
    with refused(r"^event 2 \(line 2\): 'at' is before --since"):
        feed(checker(events[1], since="2026-12-01T00:00:03Z"), events[1:])
    with refused(r"^event 4 \(line 5\): 'at' is after --until"):
        feed(checker(events[0], until="2026-12-01T00:00:03Z"), events)


def test_a6_the_checkpoint_must_follow_match_and_reach_the_range_end() -> None:
    events = chain(5)
    check = checker(events[0])
    feed(check, events[:4])
    with refused(r"^event 4 \(line 5\): no checkpoint follows it"):
        check.finish(None)
    with refused(r"checkpoint vouches for event 5"):
        check.finish(checkpoint(events[4]))
    with refused(r"range ends at event 5 but the export stops here"):
        check.finish(checkpoint(events[3], head=events[4]))
    bounded = checker(events[0], until="4")
    feed(bounded, events[:4])
    bounded.finish(checkpoint(events[3], head=events[4]))


def test_a_malformed_header_is_refused_on_line_1() -> None:
    with refused(r"^line 1: export header must hold exactly"):
        ExportRange.from_json({"since": None})
    with refused(r"^line 1: export header since: 'soon' is neither a seq"):
        ExportRange.from_json({"since": "soon", "until": None, "first_seq": 1,
                               "first_prev_hash": GENESIS})  # fmt: skip
    with refused(r"first_seq/first_prev_hash are malformed"):
        ExportRange.from_json({"since": None, "until": None, "first_seq": 1,
                               "first_prev_hash": None})  # fmt: skip
