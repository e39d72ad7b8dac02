"""LISTEN/NOTIFY between replicas and its audit-log poll fallback, on a throwaway PostgreSQL.

Two :class:`Broadcast` services on one database stand for two Center
replicas. A broken LISTEN connection is a real one: its backend is ended with
``pg_terminate_backend``; "LISTEN stays down" is a reconnect that cannot log in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psycopg
import pytest
from sqlalchemy.engine import Engine

from konorkestra.center.store import audit
from konorkestra.center.store.broadcast import LISTENER, Broadcast, advanced, conninfo_of
from konorkestra.center.store.busevents import Event, NodeChanged, Released

pytestmark = [pytest.mark.postgresql, pytest.mark.postgresql_only]  # SQLite: one Center


async def until(probe: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait for ``probe()`` to be truthy, with a deadline (on the loop, without blocking it)."""
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {probe}"
        await asyncio.sleep(0.01)


def bus(engine: Engine, name: str, **kw: float) -> tuple[Broadcast, list[Event]]:
    got: list[Event] = []
    service = Broadcast(engine, origin=name, poll_interval=kw.pop("poll_interval", 0.2), **kw)
    service.receivers.append(got.append)
    return service, got


def end_listener(engine: Engine, origin: str) -> int:
    """End the LISTEN session of replica ``origin``, as a server restart or a proxy would."""
    with psycopg.connect(conninfo_of(engine), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"{LISTENER}-{origin}",),
        ).fetchall()
    return len(rows)


def test_a_replica_s_events_reach_the_other_replica_and_not_itself(engine: Engine) -> None:
    async def scenario() -> None:
        (a, got_a), (b, got_b) = bus(engine, "a"), bus(engine, "b")
        await a.start()
        await b.start()
        try:
            await until(lambda: a.listening and b.listening)
            a.released("checkout", 3)
            a.node_changed("00ff00ff00ff00ff")
            b.released("payments", 0)
            await until(lambda: len(got_b) == 2 and len(got_a) == 1)
            assert got_b == [Released("checkout", 3), NodeChanged("00ff00ff00ff00ff")]
            assert got_a == [Released("payments", 0)]  # never its own
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


def test_listen_reconnects_after_its_session_is_ended(engine: Engine) -> None:
    async def scenario() -> None:
        (a, _), (b, got_b) = bus(engine, "a"), bus(engine, "b", max_backoff=0.2)
        await a.start()
        await b.start()
        try:
            await until(lambda: b.listening)
            assert await asyncio.to_thread(end_listener, engine, "b") == 1
            await until(lambda: not b.listening)
            await until(lambda: b.listening)
            a.released("checkout", 4)
            await until(lambda: Released("checkout", 4) in got_b)
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


def test_while_listen_is_down_the_poll_fallback_delivers_what_the_audit_log_records(
    engine: Engine,
) -> None:
    def write(action: str, details: audit.Details) -> None:
        with engine.begin() as conn:
            audit.append(conn, "test", action, details)

    async def scenario() -> None:
        b, got = bus(engine, "b", max_backoff=0.2)
        await b.start()
        try:
            await until(lambda: b.listening)
            good, b.conninfo = b.conninfo, b.conninfo.replace("postgres@", "nobody-here@")
            await asyncio.to_thread(end_listener, engine, "b")
            await until(lambda: not b.listening)
            # A Release and a revocation committed by a replica whose NOTIFY b cannot hear.
            await asyncio.to_thread(write, "release.created", {"group": "g", "sequence": 7})
            await asyncio.to_thread(write, "node.revoked", {"node_id": "abcdabcdabcdabcd"})
            await asyncio.to_thread(write, "node.release_applied", {"node_id": "ffff"})
            await until(lambda: NodeChanged("abcdabcdabcdabcd") in got, timeout=5)
            assert not b.listening and b.polled >= 2
            assert got == [Released("g", 7), NodeChanged("abcdabcdabcdabcd")]
            b.conninfo = good  # LISTEN comes back; what happens next arrives by NOTIFY
            await until(lambda: b.listening)
            a, _ = bus(engine, "a")
            await a.start()
            await until(lambda: a.listening)
            a.released("g", 8)
            await until(lambda: Released("g", 8) in got)
            await a.stop()
        finally:
            await b.stop()

    asyncio.run(scenario())


def test_events_published_before_a_stop_are_sent_first_and_equal_ones_once(engine: Engine) -> None:
    async def scenario() -> None:
        (a, _), (b, got_b) = bus(engine, "a"), bus(engine, "b")
        await b.start()
        await a.start()
        try:
            await until(lambda: b.listening)
            for seq in range(1, 51):
                a.released("checkout", seq)
                a.released("payments", 0)  # equal and still waiting: sent once (rule E5)
            await a.stop()  # flushes the queue before its tasks end
            await until(lambda: len(got_b) == 51)
            assert a.sent == 51 and got_b.count(Released("payments", 0)) == 1
        finally:
            await b.stop()

    asyncio.run(scenario())


def test_the_high_water_mark_trails_the_audit_head_by_one_tick_of_unbroken_listen() -> None:
    assert advanced(5, None, (9, 1)) == 5  # the first tick: nothing to trail yet
    assert advanced(5, (9, 1), (12, 1)) == 9  # the head of the tick before
    assert advanced(5, (9, 1), (12, 2)) == 5  # LISTEN reconnected in between: wait a tick
    assert advanced(10, (9, 1), (12, 1)) == 10  # never backwards
