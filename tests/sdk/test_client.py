"""The synchronous SDK against the real UDS server (in-memory state, own thread)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest

import konorkestra.sdk as sdk
from konorkestra.testing.serverthread import ServerThread


def test_get_config_returns_the_release_immutably(agent: ServerThread) -> None:
    with sdk.connect(agent.server.path, name="t") as client:
        cfg = client.get_config("checkout")
        assert (cfg.group, cfg.release, cfg.sequence, cfg.source) == (
            "checkout",
            "checkout-1",
            1,
            "agent",
        )
        assert cfg.digest.startswith("sha256:") and cfg.stale is False
        assert cfg["checkout-api"]["timeoutMs"] == 800
        assert isinstance(cfg["checkout-api"], MappingProxyType)
        with pytest.raises(TypeError):
            cfg["checkout-api"]["timeoutMs"] = 1  # type: ignore[index]
        copy = cfg.to_dict()
        copy["checkout-api"]["timeoutMs"] = 1
        assert client.get_config("checkout")["checkout-api"]["timeoutMs"] == 800
        assert client.get_config("checkout") is cfg  # served from the snapshot


def test_unknown_group_is_not_found(agent: ServerThread) -> None:
    with sdk.connect(agent.server.path) as client, pytest.raises(sdk.NotFoundError):
        client.get_config("inventory")


def test_cached_read_is_well_under_a_microsecond(agent: ServerThread) -> None:
    with sdk.connect(agent.server.path) as client:
        client.get_config("checkout")
        n = 200_000
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter_ns()
            for _ in range(n):
                client.get_config("checkout")
            best = min(best, (time.perf_counter_ns() - start) / n)
        assert best < 1000, f"{best:.0f} ns per cached get_config"


def test_watch_delivers_every_release_in_order_one_at_a_time(
    agent: ServerThread, publish: Callable[..., None], recorder: Any
) -> None:
    with sdk.connect(agent.server.path) as client:
        slow = recorder()
        client.watch("checkout", slow)
        for seq in range(2, 30):
            publish(agent, seq, {"checkout-api": {"timeoutMs": seq}})
        slow.wait_for(28)
        assert slow.calls == [(seq, seq - 1) for seq in range(2, 30)]
        assert slow.max_active == 1
        assert client.get_config("checkout").sequence == 29


def test_raising_callback_acks_failed_and_keeps_its_old_view(
    agent: ServerThread,
    publish: Callable[..., None],
    acks: Callable[..., list[Any]],
    recorder: Any,
    wait_until: Callable[..., None],
) -> None:
    with sdk.connect(agent.server.path) as client:
        picky = recorder(fail_on=lambda cfg: cfg["checkout-api"]["timeoutMs"] < 0)
        happy = recorder()
        picky_watch = client.watch("checkout", picky)
        happy_watch = client.watch("checkout", happy)
        publish(agent, 2, {"checkout-api": {"timeoutMs": 900}})
        publish(agent, 3, {"checkout-api": {"timeoutMs": -1}})
        publish(agent, 4, {"checkout-api": {"timeoutMs": 950}})
        wait_until(lambda: len(acks(agent)) == 4)
        assert acks(agent) == [
            ("checkout-1", "applied", None),  # the first read: no callback yet
            ("checkout-2", "applied", None),
            ("checkout-3", "failed", "ValueError: timeoutMs must be > 0 (release checkout-3)"),
            ("checkout-4", "applied", None),
        ]
        # the picky caller never accepted 3: its next "old" is still 2
        assert picky.calls == [(2, 1), (3, 2), (4, 2)]
        assert happy.calls == [(2, 1), (3, 2), (4, 3)]
        assert picky_watch.current is not None and picky_watch.current.sequence == 4
        assert happy_watch.current is not None and happy_watch.current.sequence == 4


def test_failed_view_persists_until_a_good_release(
    agent: ServerThread,
    publish: Callable[..., None],
    acks: Callable[..., list[Any]],
    recorder: Any,
    wait_until: Callable[..., None],
) -> None:
    with sdk.connect(agent.server.path) as client:
        picky = client.watch("checkout", recorder(fail_on=lambda cfg: True))
        publish(agent, 2)
        wait_until(lambda: len(acks(agent)) == 2)
        assert acks(agent)[1][:2] == ("checkout-2", "failed")
        assert client.get_config("checkout").sequence == 2  # the newest, for plain reads
        assert picky.current is not None and picky.current.sequence == 1


def test_decorator_and_cancel(
    agent: ServerThread, publish: Callable[..., None], recorder: Any
) -> None:
    with sdk.connect(agent.server.path) as client:
        rec = recorder()
        fn = client.on_change("checkout")(rec)
        assert fn is rec
        publish(agent, 2)
        rec.wait_for(1)
        other = recorder()
        w = client.watch("checkout", other)
        w.cancel()
        publish(agent, 3)
        rec.wait_for(2)
        assert other.calls == []


def test_stale_flag_follows_status_events(
    agent: ServerThread, wait_until: Callable[..., None]
) -> None:
    with sdk.connect(agent.server.path) as client:
        assert client.get_config("checkout").stale is False
        agent.apply({"set_stale": {"group": "checkout", "stale": True}})
        wait_until(lambda: client.get_config("checkout").stale)
        assert client.get_config("checkout").sequence == 1


def test_report_reaches_the_agent(agent: ServerThread, wait_until: Callable[..., None]) -> None:
    with sdk.connect(agent.server.path, name="reporter") as client:
        assert client.report("checkout", "error_rate", 0.002) is True
        with pytest.raises(ValueError):
            client.report("checkout", "error_rate", float("nan"))

        def reports() -> list[Any]:
            events = agent.call(lambda: list(agent.server.visibility._events))
            return [(e.metric, e.value, e.client) for e in events if e.kind == "report"]

        wait_until(reports)
        assert reports() == [("error_rate", 0.002, "reporter")]


def test_many_threads_first_read_concurrently(agent: ServerThread) -> None:
    with sdk.connect(agent.server.path) as client:
        results: list[int] = []
        errors: list[BaseException] = []

        def read() -> None:
            try:
                results.append(client.get_config("checkout").sequence)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=read) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert errors == [] and results == [1] * 32


def test_close_is_idempotent_and_stops_threads(agent: ServerThread) -> None:
    before = {t.name for t in threading.enumerate()}
    client = sdk.connect(agent.server.path)
    client.get_config("checkout")
    client.close()
    client.close()
    leftover = {t.name for t in threading.enumerate()} - before
    assert not {n for n in leftover if n.startswith("konorkestra-sdk")}
    with pytest.raises(sdk.UnavailableError):
        client.get_config("other")


def test_since_delivers_a_release_that_landed_before_registration_once(
    agent: ServerThread,
    publish: Callable[..., None],
    acks: Callable[..., list[Any]],
    recorder: Any,
    wait_until: Callable[..., None],
) -> None:
    with sdk.connect(agent.server.path) as client:
        cfg = client.get_config("checkout")
        publish(agent, 2)  # lands, is delivered and acked before anyone listens
        wait_until(lambda: len(acks(agent)) == 2)
        assert client.get_config("checkout").sequence == 2
        rec, picky = recorder(), recorder(fail_on=lambda c: c.sequence == 2)
        watch = client.watch("checkout", rec, since=cfg)
        picky_watch = client.watch("checkout", picky, since=cfg)
        publish(agent, 3)  # right after: must come after 2, with old = 2
        wait_until(lambda: len(acks(agent)) == 3)
        assert rec.calls == [(2, 1), (3, 2)]
        assert picky.calls == [(2, 1), (3, 1)]  # its late failure kept its view at cfg
        assert watch.current is not None and watch.current.sequence == 3
        assert picky_watch.current is not None and picky_watch.current.sequence == 3
        # one ack per release: the late calls for 2 add none (picky's is only logged)
        assert [a[:2] for a in acks(agent)] == [
            ("checkout-1", "applied"),
            ("checkout-2", "applied"),
            ("checkout-3", "applied"),
        ]


def test_since_joins_the_ack_of_a_release_still_queued(
    agent: ServerThread,
    publish: Callable[..., None],
    acks: Callable[..., list[Any]],
    recorder: Any,
    wait_until: Callable[..., None],
) -> None:
    with sdk.connect(agent.server.path) as client:
        cfg = client.get_config("checkout")
        entered, go = threading.Event(), threading.Event()

        def blocker(new: sdk.Config, old: sdk.Config | None) -> None:
            entered.set()
            assert go.wait(10)

        client.watch("checkout", blocker)
        publish(agent, 2)
        assert entered.wait(10)  # the callback thread is busy with 2
        publish(agent, 3, {"checkout-api": {"timeoutMs": -1}})
        wait_until(lambda: client.get_config("checkout").sequence == 3)
        picky = recorder(fail_on=lambda c: c["checkout-api"]["timeoutMs"] < 0)
        watch = client.watch("checkout", picky, since=cfg)
        go.set()
        wait_until(lambda: len(acks(agent)) == 3)
        publish(agent, 4)
        wait_until(lambda: len(acks(agent)) == 4)
        assert picky.calls == [(3, 1), (4, 1)]  # 3 once, in 3's own delivery
        assert [a[:2] for a in acks(agent)] == [
            ("checkout-1", "applied"),
            ("checkout-2", "applied"),
            ("checkout-3", "failed"),  # picky's outcome joined 3's ack
            ("checkout-4", "applied"),
        ]
        assert watch.current is not None and watch.current.sequence == 4


def test_since_the_current_config_delivers_nothing_until_a_release(
    agent: ServerThread,
    publish: Callable[..., None],
    acks: Callable[..., list[Any]],
    recorder: Any,
    wait_until: Callable[..., None],
) -> None:
    with sdk.connect(agent.server.path) as client:
        cfg = client.get_config("checkout")
        rec = recorder()
        fn = client.on_change("checkout", since=cfg)(rec)
        assert fn is rec
        publish(agent, 2)  # the first call, if any, must be this one
        wait_until(lambda: len(acks(agent)) == 2)
        rec.wait_for(1)
        assert rec.calls == [(2, 1)]


def test_since_from_another_group_is_an_error(agent: ServerThread, recorder: Any) -> None:
    with sdk.connect(agent.server.path) as client:
        cfg = client.get_config("checkout")
        with pytest.raises(ValueError, match="group 'checkout', not 'inventory'"):
            client.watch("inventory", recorder(), since=cfg)
