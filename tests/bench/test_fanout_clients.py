"""The fan-out bench's hand-written HTTP/1.1 reader gives the same messages however bytes arrive.

``bench/fanout_clients.py`` parses responses itself (to hold 10,000 connections
in one process); a message split across reads at any point — inside a header,
a chunk size, a chunk or a line — must come out whole, once, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


from fanout_clients import Conn, Endpoint, Tracker

BODY = b'{"node":"n1","releases":[],"freshness":"AA==","wait":55.0}'
LINES = [b'{"node":"n1","releases":[{"group":"checkout","sequence":7}]}', b"", b'{"x":1}']
STREAM = b"".join(LINES[i] + b"\n" for i in range(3))
WIRE = (
    b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\ncontent-type: application/json\r\n\r\n%s"
    % (len(BODY), BODY)
    + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"".join(
        b"%x\r\n%s\r\n" % (len(part), part) for part in (STREAM[:5], STREAM[5:40], STREAM[40:])
    )
    + b"0\r\n\r\n"
)


class Recorder(Conn):
    def __init__(self) -> None:
        super().__init__(Endpoint("127.0.0.1", 1, "127.0.0.1", None), 0, Tracker(1))
        self.events: list[tuple[str, int, bytes]] = []

    def body(self, status: int, body: bytes, at: float) -> None:
        self.events.append(("body", status, body))

    def line(self, status: int, line: bytes, at: float) -> None:
        self.events.append(("line", status, line))

    def ended(self, status: int) -> None:
        self.events.append(("end", status, b""))


def parse(cuts: list[int]) -> list[tuple[str, int, bytes]]:
    async def run() -> list[tuple[str, int, bytes]]:
        conn = Recorder()
        edges = [0, *sorted({c % (len(WIRE) + 1) for c in cuts}), len(WIRE)]
        for a, b in itertools.pairwise(edges):
            conn._feed(WIRE[a:b], 0.0)
        return conn.events

    return asyncio.run(run())


EXPECTED = [("body", 200, BODY), *(("line", 200, x) for x in LINES), ("end", 200, b"")]


def test_whole_wire_in_one_read() -> None:
    assert parse([]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_any_split_gives_the_same_messages(cuts: list[int]) -> None:
    assert parse(cuts) == EXPECTED
