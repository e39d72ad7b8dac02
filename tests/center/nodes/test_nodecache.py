"""The node cache behind per-request authorization: drops win over racing fills."""

from __future__ import annotations

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
