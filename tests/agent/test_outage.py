"""The agent says "cannot reach the Center" once per outage, by the rules of ``agent/outage.py``."""

from __future__ import annotations

import logging

from konorkestra.agent.outage import Outage


def test_first_failure_of_an_outage_is_a_warning_later_ones_are_debug() -> None:
    outage = Outage(remind_every=300)
    level, text = outage.failed("GET /v1/agent/desired: ConnectError: refused", 0.7, now=10.0)
    assert level == logging.WARNING
    assert "cannot reach the Center" in text and "ConnectError" in text
    for i in range(1, 20):
        level, _ = outage.failed("ConnectError", 1.0, now=10.0 + i)
        assert level == logging.DEBUG


def test_a_long_outage_is_reminded_once_per_period() -> None:
    outage = Outage(remind_every=300)
    outage.failed("x", 1.0, now=0.0)
    levels = [outage.failed("x", 30.0, now=t)[0] for t in range(30, 700, 30)]
    assert levels.count(logging.WARNING) == 2  # at 300 s and 600 s


def test_recovered_says_so_only_after_an_outage() -> None:
    outage = Outage()
    assert outage.recovered(now=0.0) is None
    outage.failed("x", 1.0, now=1.0)
    outage.failed("x", 1.0, now=2.0)
    back = outage.recovered(now=4.5)
    assert back is not None and "2 failed attempts" in back and "3.5s" in back
    assert outage.recovered(now=5.0) is None
    assert outage.failed("x", 1.0, now=6.0)[0] == logging.WARNING  # a new outage
