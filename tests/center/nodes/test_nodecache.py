"""The node cache behind per-request authorization: drops win over racing fills."""

from __future__ import annotations

import threading

from konorkestra.center.nodes.cache import MISS, NodeCache


def test_a_fill_that_began_before_a_drop_is_discarded() -> None:
    cache: NodeCache[str] = NodeCache()
    token = cache.begin()  # a store read starts: the node is still allowed
    cache.drop("n1")  # meanwhile the node is revoked
    cache.fill(token, "n1", "allowed-record")  # the stale read ends
    assert cache.get("n1") is MISS  # never served: the next lookup reads the store
    cache.fill(cache.begin(), "n1", None)
    assert cache.get("n1") is None


def test_entries_expire_and_unknown_nodes_are_cached_too() -> None:
    now = [0.0]
    cache: NodeCache[str] = NodeCache(ttl=10.0, clock=lambda: now[0])
    cache.fill(cache.begin(), "n1", "record")
    cache.fill(cache.begin(), "n2", None)
    assert cache.get("n1") == "record" and cache.get("n2") is None
    now[0] = 10.5
    assert cache.get("n1") is MISS and cache.get("n2") is MISS


def test_the_cache_is_bounded() -> None:
    cache: NodeCache[int] = NodeCache(max_entries=3)
    for i in range(5):
        cache.fill(cache.begin(), f"n{i}", i)
    assert sum(cache.get(f"n{i}") is not MISS for i in range(5)) <= 3
    assert cache.get("n4") == 4


def test_a_hit_keeps_an_entry_alive_until_its_max_age() -> None:
    now = [0.0]
    cache: NodeCache[str] = NodeCache(ttl=60.0, max_age=300.0, clock=lambda: now[0])
    cache.fill(cache.begin(), "n1", "record")
    for t in (55.0, 110.0, 165.0, 220.0, 275.0):  # an agent re-polling every 55 s
        now[0] = t
        assert cache.get("n1") == "record"  # each re-poll a hit: no store read
    now[0] = 300.5
    assert cache.get("n1") is MISS  # the backstop: read from the store again
    cache.fill(cache.begin(), "n2", None)
    now[0] = 361.0  # unused for more than ttl
    assert cache.get("n2") is MISS


def test_a_hit_racing_a_drop_never_puts_the_entry_back() -> None:
    cache: NodeCache[str] = NodeCache()
    cache.fill(cache.begin(), "n1", "allowed-record")
    dropped = []

    def clock() -> float:  # runs inside get(), after the entry was looked up
        if not dropped:
            dropped.append(True)
            cache.drop("n1")  # the revocation lands mid-hit
        return 0.0

    cache.clock = clock
    cache.get("n1")  # the hit in flight may still see the old record ...
    assert cache.get("n1") is MISS  # ... but the very next request reads the store


def test_drop_listeners_run_after_each_drop_in_the_dropping_thread() -> None:
    cache: NodeCache[str] = NodeCache()
    cache.fill(cache.begin(), "n1", "record")
    seen: list[tuple[str, object, str]] = []

    def listener(node_id: str) -> None:
        seen.append((node_id, cache.get(node_id), threading.current_thread().name))

    def broken(node_id: str) -> None:
        raise RuntimeError("a listener bug")

    cache.drop_listeners += [broken, listener]
    worker = threading.Thread(target=cache.drop, args=("n1",), name="revoker")
    worker.start()
    worker.join(timeout=10)
    cache.drop("n2")  # unknown to the cache: listeners are told all the same
    # The entry is gone when a listener runs; a broken listener stops neither the
    # drop nor the others.
    assert seen == [("n1", MISS, "revoker"), ("n2", MISS, "MainThread")]
    assert cache.get("n1") is MISS
