"""The answer caches start a new Release's loads once and early (issue 17, fan-out work)."""

from __future__ import annotations

import asyncio

from konorkestra.center.agentapi.cache import EntryCache, LatestCache
from konorkestra.center.agentapi.notify import ReleaseNotifier
from konorkestra.center.releases.desired import LatestRow
from konorkestra.model.types import ReleaseId

D = "sha256:" + "a" * 64


class Store:
    """Rows read by loads that wait on a gate, counting the loads."""

    def __init__(self) -> None:
        self.rows = {"checkout": LatestRow("checkout", 1, "c1", D)}
        self.loads: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def load(self, groups: list[str]) -> list[LatestRow]:
        self.loads.append(groups)
        snapshot = [self.rows[g] for g in groups if g in self.rows]
        await self.gate.wait()
        return snapshot


async def until(condition: object, turns: int = 1000) -> None:
    for _ in range(turns):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not met")


def test_an_invalidation_starts_the_reload_before_the_woken_requests_run() -> None:
    async def main() -> None:
        store, prefetched = Store(), []
        cache = LatestCache(store.load, ttl=60, prefetched=prefetched.append)
        notifier = ReleaseNotifier()
        await notifier.start()
        notifier.listeners.append(cache.invalidate)
        assert await cache.get(["checkout"]) == [store.rows["checkout"]]
        store.gate.clear()
        subs = [notifier.subscribe({"checkout"}) for _ in range(100)]
        for sub in subs:
            sub.__enter__()

        loads_when_woken = []

        async def parked(sub: object) -> list[LatestRow]:
            await sub.wait(30)  # type: ignore[attr-defined]
            loads_when_woken.append(len(store.loads))
            return await cache.get(["checkout"])

        tasks = [asyncio.create_task(parked(sub)) for sub in subs]
        await asyncio.sleep(0)
        store.rows["checkout"] = LatestRow("checkout", 2, "c2", D)
        notifier.released("checkout", 2)  # the listener runs before any wake-up
        # The reload is in flight before a single woken request has run.
        await until(lambda: len(store.loads) == 2)
        store.gate.set()
        answers = await asyncio.gather(*tasks)
        assert all(a == [store.rows["checkout"]] for a in answers)
        assert len(store.loads) == 2  # a hundred woken requests, the one early load,
        assert loads_when_woken == [2] * 100  # in flight before the first of them ran
        assert prefetched == [[store.rows["checkout"]]]
        for sub in subs:
            sub.__exit__(None, None, None)
        await notifier.stop()

    asyncio.run(main())


def test_a_reload_takes_every_dropped_group_and_a_raced_load_is_never_kept() -> None:
    async def main() -> None:
        store = Store()
        store.rows["payments"] = LatestRow("payments", 1, "p1", D)
        cache = LatestCache(store.load, ttl=60)
        await cache.get(["checkout", "payments"])
        store.gate.clear()
        cache.invalidate("checkout", 2)
        cache.invalidate("payments", 2)  # the first reload is now stale: a second one
        await until(lambda: len(store.loads) == 3)
        assert store.loads[1:] == [["checkout"], ["checkout", "payments"]]
        # A Release commits while that load is in flight (it read the old rows):
        store.rows["checkout"] = LatestRow("checkout", 2, "c2", D)
        cache.invalidate("checkout", 2)
        woken = asyncio.create_task(cache.get(["checkout", "payments"]))
        await until(lambda: len(store.loads) == 4)  # the new reload, both groups again
        assert store.loads[-1] == ["checkout", "payments"]
        store.gate.set()
        assert await woken == [store.rows["checkout"], store.rows["payments"]]
        assert len(store.loads) == 4  # the woken request joined the newest reload
        assert await cache.get(["checkout"]) == [store.rows["checkout"]]

    asyncio.run(main())


def test_a_failing_prefetch_is_logged_and_the_next_request_loads_again() -> None:
    async def main() -> None:
        calls = []

        async def load(groups: list[str]) -> list[LatestRow]:
            calls.append(groups)
            if len(calls) == 1:
                raise OSError("store down")
            return [LatestRow("checkout", 3, "c3", D)]

        cache = LatestCache(load, ttl=60)
        cache.invalidate("checkout", 3)
        await until(lambda: len(calls) == 1 and not cache._loading)
        assert await cache.get(["checkout"]) == [LatestRow("checkout", 3, "c3", D)]

    asyncio.run(main())


def test_entry_prefetch_loads_each_release_once_and_requests_share_it() -> None:
    async def main() -> None:
        loads: list[str] = []
        gate = asyncio.Event()

        async def load(release_id: ReleaseId) -> bytes | None:
            loads.append(release_id)
            await gate.wait()
            return None if release_id == "gone" else release_id.encode()

        entries = EntryCache(load)
        entries.prefetch([ReleaseId("c2"), ReleaseId("c2"), ReleaseId("gone")])
        asking = [asyncio.create_task(entries.get(ReleaseId("c2"))) for _ in range(10)]
        await until(lambda: len(loads) == 2)
        gate.set()
        assert await asyncio.gather(*asking) == [b"c2"] * 10
        entries.prefetch([ReleaseId("c2")])  # held: nothing to load
        assert sorted(loads) == ["c2", "gone"]

    asyncio.run(main())


def test_offered_names_each_release_some_node_is_told_to_hold() -> None:
    from konorkestra.center.agentapi.api import offered
    from konorkestra.center.releases.desired import GroupTargets
    from konorkestra.model.types import GroupName, NodeId

    c1, c2 = LatestRow("checkout", 1, "c1", D), LatestRow("checkout", 2, "c2", D)
    canary = GroupTargets(GroupName("checkout"), c1, {NodeId("n1"): c2, NodeId("n2"): None})
    fresh = GroupTargets(GroupName("payments"), None, {})
    assert offered([canary, fresh]) == {"c1", "c2"}
