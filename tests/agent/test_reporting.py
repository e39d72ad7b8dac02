"""The agent's report batches: bounded to what the Center accepts, never stuck on a refusal."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from konorkestra.agent.peers import PeerIdentity
from konorkestra.agent.reporting import MAX_BATCH_BYTES, BatchRefused, Reporter
from konorkestra.agent.visibility import Visibility
from konorkestra.center.agentapi.reports import parse_report
from konorkestra.model.strictjson import parse_object

PEER = PeerIdentity(pid=4242, uid=1000, gid=1000, exe="/usr/bin/app", start_time=7)


class Center:
    """Takes report bodies as the Center would parse them; can refuse or fail on cue."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.refuse: set[int] = set()  # indexes of calls to refuse (400-like)
        self.fail: set[int] = set()  # indexes of calls that fail in transport
        self.calls = 0

    async def send(self, body: dict[str, Any]) -> None:
        call, self.calls = self.calls, self.calls + 1
        raw = json.dumps(body).encode()
        assert len(raw) <= 1 << 20, f"a {len(raw)}-byte body is over the Center's 1 MiB limit"
        parse_report(parse_object(raw))  # raises like the Center's 400 would
        if call in self.fail:
            raise ConnectionError("Center unreachable")
        if call in self.refuse:
            raise BatchRefused("400 the report credits a group with a release of another")
        self.bodies.append(body)


def items_sent(center: Center) -> int:
    return sum(len(b[k]) for b in center.bodies for k in ("applied", "refused", "events"))


async def drain(reporter: Reporter) -> None:
    for _ in range(100):
        if not reporter.pending():
            return
        await reporter.flush()
    raise AssertionError("the reporter never emptied its queue")


def test_a_backlog_larger_than_the_center_accepts_goes_out_in_accepted_batches() -> None:
    visibility = Visibility(max_events=20_000)
    center = Center()
    reporter = Reporter(visibility, center.send, max_pending=20_000)
    for i in range(3_000):
        reporter.applied("web", f"web-{i + 1}-0123456789abcdef", i + 1, "sha256:" + "01" * 32)
    for i in range(6_000):
        visibility.acked(PEER, "web", "web-1-0123456789abcdef", "applied", None)
        visibility.reported(PEER, "web", "error_rate", i / 6_000)
    asyncio.run(drain(reporter))
    assert len(center.bodies) >= 9
    assert items_sent(center) == 3_000 + 12_000
    assert sum(b["dropped"] for b in center.bodies) == 0


def test_large_items_keep_each_body_within_the_byte_budget() -> None:
    visibility = Visibility()
    center = Center()
    reporter = Reporter(visibility, center.send)
    for i in range(900):
        reporter.refused("web", None, None, "BadSignature", "x" * 1_900 + str(i))
    asyncio.run(drain(reporter))
    sizes = [len(json.dumps(b)) for b in center.bodies]
    assert len(sizes) >= 3
    assert max(sizes) < MAX_BATCH_BYTES + 8_192
    assert items_sent(center) == 900


def test_a_refused_batch_is_dropped_and_counted_and_the_next_one_goes_through() -> None:
    visibility = Visibility()
    center = Center()
    center.refuse = {0}
    reporter = Reporter(visibility, center.send)
    reporter.applied("web", "web-1-0123456789abcdef", 1, "sha256:" + "01" * 32)
    assert asyncio.run(reporter.flush()) is True
    assert reporter.pending() == 0
    assert reporter.last_error is not None and "refused" in reporter.last_error
    reporter.applied("web", "web-2-0123456789abcdef", 2, "sha256:" + "02" * 32)
    asyncio.run(reporter.flush())
    [body] = center.bodies
    assert [a["sequence"] for a in body["applied"]] == [2]
    assert body["dropped"] == 1  # the Center learns that one item was lost


def test_a_transport_failure_keeps_the_batch_for_the_next_send() -> None:
    visibility = Visibility()
    center = Center()
    center.fail = {0}
    reporter = Reporter(visibility, center.send)
    reporter.applied("web", "web-1-0123456789abcdef", 1, "sha256:" + "01" * 32)
    assert asyncio.run(reporter.flush()) is False
    assert reporter.pending() == 1
    assert asyncio.run(reporter.flush()) is True
    [body] = center.bodies
    assert [a["sequence"] for a in body["applied"]] == [1]
    assert body["dropped"] == 0
