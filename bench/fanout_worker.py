"""The client process of ``bench/fanout.py``: N parked clients in one asyncio loop.

Started by ``bench/fanout.py`` as ``python bench/fanout_worker.py spec.json``; the spec names
the kind (``poll``, ``stream`` or ``etcd``), the address, the TLS material and
``n``. Protocol, one line each way (stdout / stdin):

* ``ready <n> <seq>`` — every client is connected and had its first answer (ours:
  the current Release, sequence ``seq``; etcd: the watch is created, ``seq`` 0),
  then each client parks (``have=<group>:<seq>``) or waits on its stream/watch;
* ``wait <target> <timeout>`` → ``got <target> <json of arrival stamps>`` once every
  client has seen a sequence >= ``target`` (its first such arrival, monotonic
  seconds), or ``fail <target> <count> <first error>`` at an error or the deadline;
* ``quit`` → the connections are closed and the process exits.

Invariants: connections open from ``sources`` loopback addresses (127.0.1.x) in
turn, at most ``CONCURRENT`` handshakes in flight; any client error before
``ready`` ends the process with ``fail``.
"""

from __future__ import annotations

import asyncio
import json
import resource
import ssl
import sys
from pathlib import Path
from typing import Any

from fanout_clients import Conn, Endpoint, EtcdWatcher, PollClient, StreamClient, Tracker

CONCURRENT = 64
KINDS: dict[str, type[Conn]] = {"poll": PollClient, "stream": StreamClient, "etcd": EtcdWatcher}


def source(i: int, sources: int) -> str:
    k = i % sources
    return f"127.0.{1 + k // 250}.{1 + k % 250}"


def contexts(spec: dict[str, Any]) -> list[ssl.SSLContext | None]:
    """One client TLS context per client (ours: each node's own certificate)."""
    n, ca = spec["n"], spec.get("ca")
    if ca is None:
        return [None] * n

    def make(cert: str | None, key: str | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert is not None:
            ctx.load_cert_chain(cert, key)
        return ctx

    certs = spec.get("certs")
    if certs is None:  # one identity for every client (etcd: a client certificate, or none)
        shared = make(spec.get("cert"), spec.get("key"))
        return [shared] * n
    return [make(cert, spec["key"]) for cert in certs[:n]]


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def run(spec: dict[str, Any]) -> int:
    n, kind = spec["n"], KINDS[spec["kind"]]
    tracker = Tracker(n)
    ctxs = contexts(spec)
    clients = [
        kind(Endpoint(spec["host"], spec["port"], source(i, spec["sources"]), ctxs[i]), i, tracker)
        for i in range(n)
    ]
    gate = asyncio.Semaphore(CONCURRENT)

    async def start(c: Conn) -> None:
        async with gate:
            await c.open()
            await asyncio.wait_for(asyncio.shield(c.first), spec.get("first_timeout", 60))

    try:
        await asyncio.gather(*(start(c) for c in clients))
    except (OSError, RuntimeError, TimeoutError) as exc:
        first = tracker.errors[0] if tracker.errors else repr(exc)
        say(f"fail 0 {n - len([c for c in clients if c.first.done()])} {first}")
        return 1
    seqs = {tracker.latest(i) for i in range(n)}
    say(f"ready {n} {max([0, *seqs])}")
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        if line[0] == "quit":
            break
        if line[0] == "wait":
            target, timeout = int(line[1]), float(line[2])
            if await tracker.wait_all(target, timeout):
                say(f"got {target} {json.dumps(tracker.arrivals(target))}")
            else:
                why = tracker.errors[0] if tracker.errors else "deadline"
                say(f"fail {target} {tracker.count_at(target)} {why}")
        elif line[0] == "stat":
            say(f"stat {tracker.reconnects} {len(tracker.errors)}")
    for c in clients:
        c.close()
    return 0


def main(spec_file: Path) -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return asyncio.run(run(json.loads(spec_file.read_text())))


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
