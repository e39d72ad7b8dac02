"""A delivery wakes its streams after the reload it started; unchanged targets are not rebuilt.

Issue 17 (10,000 parked agents): woken streams used to queue on the one load of the new
targets, ten thousand tasks sharing the interpreter with the worker thread running it.
Now the notifier wakes them when that load is done (or failed, or at a deadline), and a
load whose Group's latest Release and rollout row did not move returns the targets it built
last time instead of parsing the rollout's state again.
"""

from __future__ import annotations

import asyncio

import pytest

from konorkestra.center.agentapi import notify
from konorkestra.center.agentapi.cache import LatestCache
from konorkestra.center.agentapi.entries import TargetsMemo, group_targets
from konorkestra.center.agentapi.notify import ReleaseNotifier
from konorkestra.center.app.datadir import Opened
from konorkestra.center.releases.desired import LatestRow
from tests.center.agentapi.test_agent_cache import D, Store
from tests.center.rollouts.rig import GROUP, Rig, canary

pytestmark = pytest.mark.postgresql


async def _parked() -> tuple[Store, LatestCache[LatestRow], ReleaseNotifier]:
    """A notifier whose listener is a cache holding checkout's row, read by ``Store``."""
    store = Store()
    cache: LatestCache[LatestRow] = LatestCache(store.load, ttl=60)
    notifier = ReleaseNotifier()
    await notifier.start()
    notifier.listeners.append(cache.invalidate)
    await cache.get(["checkout"])  # stored
    return store, cache, notifier


def test_streams_wake_once_the_reload_their_delivery_started_is_done() -> None:
    async def main() -> None:
        store, cache, notifier = await _parked()
        with notifier.subscribe({"checkout"}) as sub:
            store.gate.clear()
            store.rows["checkout"] = LatestRow("checkout", 2, "c2", D)
            notifier.released("checkout", 2)
            assert not await sub.wait(0.2)  # the reload is held: nobody is woken yet
            store.gate.set()
            assert await sub.wait(5)
            loads = len(store.loads)
            # Woken after the load: the new row is stored, reading it starts no load.
            assert await cache.get(["checkout"]) == [store.rows["checkout"]]
            assert len(store.loads) == loads == 2
        await notifier.stop()

    asyncio.run(main())


def test_a_failed_reload_still_wakes_and_a_stuck_one_wakes_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(notify, "WAKE_DEADLINE", 0.3)

    async def main() -> None:
        store, _cache, notifier = await _parked()
        with notifier.subscribe({"checkout"}) as sub:
            failing = asyncio.get_running_loop().create_future()
            notifier.listeners.append(lambda _g, _s: failing)
            notifier.released("checkout", 2)  # two reloads: the cache's and ``failing``
            failing.set_exception(RuntimeError("store down"))
            assert await sub.wait(5)  # the cache's load finished, the other failed: woken
            failing.exception()  # retrieved
            notifier.listeners.pop()
            store.gate.clear()  # a reload that never ends
            notifier.released("checkout", 3)
            assert await sub.wait(5)  # woken by the deadline
            store.gate.set()
        await notifier.stop()

    asyncio.run(main())


def test_the_targets_memo_rebuilds_a_group_only_when_its_release_or_rollout_moved(
    opened: Opened,
) -> None:
    rig = Rig.create(opened, nodes=6, policy=canary())
    memo = TargetsMemo()
    first = rig.release(1)
    rig.step(at=0)  # the canary's first wave
    [a] = group_targets(rig.engine, [GROUP], memo)
    [b] = group_targets(rig.engine, [GROUP], memo)
    assert b is a  # nothing moved: the same answer, not rebuilt
    assert a == group_targets(rig.engine, [GROUP])[0]
    for node in rig.nodes:
        rig.commit(node, first, ["applied"])
    rig.step(at=61)  # the rollout moves: its row's revision too
    [c] = group_targets(rig.engine, [GROUP], memo)
    assert c is not a and c == group_targets(rig.engine, [GROUP])[0]
    rig.release(2)  # a new latest Release (its rollout not started yet)
    [d] = group_targets(rig.engine, [GROUP], memo)
    assert d is not c and d == group_targets(rig.engine, [GROUP])[0]
    # A Group without a rollout, or without any Release, is keyed too.
    assert group_targets(rig.engine, ["payments"], memo) == group_targets(rig.engine, ["payments"])
