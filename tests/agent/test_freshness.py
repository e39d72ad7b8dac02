"""The agent's kept freshness: poll bound, kept statement, a bad kept one is ignored."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from konorkestra.agent.freshness import FRESHNESS_FILE, FreshnessKeeper
from konorkestra.agent.served import ServedState
from konorkestra.trust import FreshnessStatus, MalformedBundle

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def keeper(tmp_path: Path, now: dt.datetime = NOW) -> FreshnessKeeper:
    served = ServedState({"checkout"}, clock=lambda: now)
    return FreshnessKeeper(
        served, tmp_path, skew=dt.timedelta(seconds=30), poll_wait=55.0, clock=lambda: now
    )


def test_poll_wait_is_at_most_half_of_what_is_left_and_at_least_a_second(tmp_path: Path) -> None:
    k = keeper(tmp_path)
    assert k.poll_wait() == 55.0  # no statement yet
    k.expires = NOW + dt.timedelta(seconds=40)
    assert k.poll_wait() == 20.0
    k.expires = NOW + dt.timedelta(seconds=1)
    assert k.poll_wait() == 1.0
    k.expires = NOW + dt.timedelta(hours=1)
    assert k.poll_wait() == 55.0


def test_kept_statement_is_written_atomically_and_read_back(tmp_path: Path) -> None:
    k = keeper(tmp_path)
    assert k.persist_due()
    k.persist(b"statement")
    k.persisted()
    assert not k.persist_due()
    assert (tmp_path / FRESHNESS_FILE).read_bytes() == b"statement"
    seen: list[bytes] = []

    def check(raw: bytes) -> FreshnessStatus:
        seen.append(raw)
        raise MalformedBundle("not today")

    k.load(check)  # refused: a warning, nothing adopted, no exception
    assert seen == [b"statement"] and k.last_issued is None and k.expires is None


def test_no_kept_statement_is_not_an_error(tmp_path: Path) -> None:
    def check(raw: bytes) -> FreshnessStatus:
        pytest.fail("nothing to check")

    keeper(tmp_path).load(check)
