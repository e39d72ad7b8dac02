"""The dashboard's change feed: a new audit event or agent report reaches listeners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from konorkestra.center.app.datadir import Opened
from konorkestra.center.store import audit
from konorkestra.center.ui.pulse import Pulse, fingerprint

DEADLINE = 10.0


async def _next(changes: AsyncIterator[int | None]) -> int | None:
    return await asyncio.wait_for(anext(changes), DEADLINE)


def test_a_new_audit_event_is_told_to_every_listener(opened: Opened) -> None:
    async def scenario() -> tuple[list[int | None], list[int | None]]:
        pulse = Pulse(opened.engine, poll=0.02)
        await pulse.start()
        try:
            one, two = pulse.changes(), pulse.changes()
            first = [await _next(one), await _next(two)]
            assert pulse.parked() == 2
            while pulse.version == 0:  # the poller's first look at the store
                await asyncio.sleep(0.01)
            seen = [await _next(one), await _next(two)]
            with opened.engine.begin() as conn:
                audit.append(conn, "test", "test.changed", {"n": 1})
            after = [await _next(one), await _next(two)]
            await one.aclose()
            await two.aclose()
            assert pulse.parked() == 0
            return first + seen, after
        finally:
            await pulse.stop()

    before, after = asyncio.run(asyncio.wait_for(scenario(), 3 * DEADLINE))
    assert after[0] == after[1] and after[0] is not None
    assert all(after[0] > (v or 0) for v in before)


def test_draining_ends_every_stream_at_once(opened: Opened) -> None:
    async def scenario() -> list[int | None]:
        pulse = Pulse(opened.engine, poll=0.02)
        await pulse.start()
        changes = pulse.changes()
        got = [await _next(changes)]
        pulse.drain()
        got += [v async for v in changes]  # ends: no keep-alive wait
        await pulse.stop()
        return got

    got = asyncio.run(asyncio.wait_for(scenario(), DEADLINE))
    assert got == [0]


def test_the_fingerprint_moves_with_the_audit_log(opened: Opened) -> None:
    before = fingerprint(opened.engine)
    with opened.engine.begin() as conn:
        audit.append(conn, "test", "test.changed", {})
    after = fingerprint(opened.engine)
    assert after[0] == before[0] + 1 and after[1] == before[1]
