"""The asyncio flavour: connect_async, get_config, async for watch, async on_change."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from konorkestra.sdk import Config
from konorkestra.sdk.aio import connect_async
from konorkestra.testing.serverthread import ServerThread


def test_async_get_watch_and_on_change(
    agent: ServerThread,
    publish: Callable[..., None],
    acks: Callable[..., list[Any]],
    wait_until: Callable[..., None],
) -> None:
    async def main() -> tuple[list[int], list[tuple[int, int | None]]]:
        async with await connect_async(agent.server.path, name="aio") as client:
            cfg = await client.get_config("checkout")
            assert cfg.release == "checkout-1"
            calls: list[tuple[int, int | None]] = []

            @client.on_change("checkout")
            async def reload(new: Config, old: Config | None) -> None:
                await asyncio.sleep(0)  # really runs on this loop
                calls.append((new.sequence, old.sequence if old else None))
                if new["checkout-api"]["timeoutMs"] < 0:
                    raise ValueError("negative timeout")

            seen: list[int] = []
            async with client.watch("checkout") as releases:
                for seq, timeout in ((2, 900), (3, -5), (4, 950)):
                    await asyncio.to_thread(
                        publish, agent, seq, {"checkout-api": {"timeoutMs": timeout}}
                    )
                async for new in releases:
                    seen.append(new.sequence)
                    if new.sequence == 4:
                        break
            assert (await client.get_config("checkout")).sequence == 4
            assert await client.report("checkout", "latency_ms", 12)
            await asyncio.to_thread(wait_until, lambda: len(acks(agent)) == 4)
            return seen, calls

    seen, calls = asyncio.run(asyncio.wait_for(main(), 30))
    assert seen == [2, 3, 4]
    assert calls == [(2, 1), (3, 2), (4, 2)]
    assert [a[:2] for a in acks(agent)] == [
        ("checkout-1", "applied"),
        ("checkout-2", "applied"),
        ("checkout-3", "failed"),
        ("checkout-4", "applied"),
    ]
    assert acks(agent)[2][2] == "ValueError: negative timeout"


def test_async_since_delivers_the_release_missed_before_registration(
    agent: ServerThread,
    publish: Callable[..., None],
    acks: Callable[..., list[Any]],
    wait_until: Callable[..., None],
) -> None:
    async def main() -> tuple[list[int], list[tuple[int, int | None]]]:
        async with await connect_async(agent.server.path, name="aio") as client:
            cfg = await client.get_config("checkout")
            await asyncio.to_thread(publish, agent, 2)
            await asyncio.to_thread(wait_until, lambda: len(acks(agent)) == 2)
            calls: list[tuple[int, int | None]] = []

            @client.on_change("checkout", since=cfg)
            async def reload(new: Config, old: Config | None) -> None:
                calls.append((new.sequence, old.sequence if old else None))

            seen: list[int] = []
            async with client.watch("checkout", since=cfg) as releases:
                await asyncio.to_thread(publish, agent, 3)
                async for new in releases:
                    seen.append(new.sequence)
                    if new.sequence == 3:
                        break
            await asyncio.to_thread(wait_until, lambda: len(acks(agent)) == 3)
            return seen, calls

    seen, calls = asyncio.run(asyncio.wait_for(main(), 30))
    assert seen == [2, 3]
    assert calls == [(2, 1), (3, 2)]
    assert [a[:2] for a in acks(agent)] == [
        ("checkout-1", "applied"),
        ("checkout-2", "applied"),
        ("checkout-3", "applied"),
    ]
