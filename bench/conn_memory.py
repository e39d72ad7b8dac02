"""Benchmark: what a parked agent connection costs the Center, and a fan-out (issue 17).

Usage::

    .venv/bin/python bench/conn_memory.py --conns 1000                  # RSS per connection
    .venv/bin/python bench/conn_memory.py --conns 1000 --ssl-buffer 256 # asyncio's own buffer
    .venv/bin/python bench/conn_memory.py --conns 1000 --trace 15       # top 15 allocation sites
    .venv/bin/python bench/conn_memory.py --conns 1000 --fanout 3 --idle 30

The Center runs in this process, assembled as ``konorkestra center`` assembles
it (:func:`konorkestra.center.app.server.build`, :meth:`CenterTLS.server`: mTLS,
the TLS-extension protocol, the self-test), over a copy of the example config
repo with ``checkout`` released all at once. ``--conns`` nodes are enrolled
through the real :class:`EnrollmentService` (join tokens in bulk, a CSR each,
certificates from the Center's CA), and a client process opens one mTLS
connection per node and sends exactly the agent's long-poll
(``GET /v1/agent/desired?have=…&wait=55``), re-polling after every answer.

Printed: the Center's RSS before and with every connection parked, per
connection; with ``--trace N``, the Python heap growth per connection
(``tracemalloc``) and its top N allocation sites (what RSS grew beyond it is
C memory: OpenSSL, the kernel's socket buffers are not counted in RSS); with
``--idle S``, the Center's CPU over S seconds while all are parked; with
``--fanout K``, K Releases of ``checkout``, each timed from its commit (the
releaser's listener) to every node's answer carrying it (p50 / p99 / max, one
clock: ``time.monotonic`` is CLOCK_MONOTONIC for every process on a host).
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.sslproto
import gc
import json
import os
import shutil
import ssl
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve()
GROUP = "checkout"


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# -- the client process: one mTLS connection per node, each long-polling -------------------


async def client_main(listing: Path, port: int, anchor: str) -> None:
    asyncio.sslproto.SSLProtocol.max_size = 16 * 1024  # the client's memory is not measured
    pems = json.loads(listing.read_text())
    opened = 0
    gate = asyncio.Semaphore(64)

    async def poll(pem: str) -> None:
        nonlocal opened
        ctx = ssl.create_default_context(cafile=anchor)
        ctx.load_cert_chain(pem)
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        opened += 1
        if opened == len(pems):
            print("connected", len(pems), flush=True)
        have: dict[str, int] = {}
        while True:
            query = ",".join(f"{g}:{s}" for g, s in sorted(have.items()))
            writer.write(
                f"GET /v1/agent/desired?have={query}&wait=55 HTTP/1.1\r\n"
                "Host: 127.0.0.1\r\nAccept: application/json\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            answer = json.loads(await reader.readexactly(length))
            if answer.get("releases"):
                for release in answer["releases"]:
                    have[release["group"]] = release["sequence"]
                print("a", time.monotonic(), max(have.values()), flush=True)

    await asyncio.gather(*(poll(pem) for pem in pems))


# -- the Center, in this process -----------------------------------------------------------


def prepare(root: Path, conns: int) -> tuple[object, object, Path, Path]:
    """A config repo, a built Center and ``conns`` enrolled nodes' PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from konorkestra.center.app.server import build
    from konorkestra.center.nodes.jointokens import JoinTokenSpec
    from konorkestra.demo import ConfigRepo, examples_dir
    from konorkestra.demo.edits import GROUP_FILE
    from konorkestra.demo.gitrepo import git
    from konorkestra.model.types import GroupName

    repo = ConfigRepo.create(root / "repo", seed=examples_dir() / "config-repo")
    text = (repo.work / GROUP_FILE).read_text()
    repo.write(GROUP_FILE, text.replace("policy: canary", "policy: all-at-once"))
    git(repo.work, "commit", "--quiet", "-am", "bench: checkout all at once")
    repo.push()
    built = build(
        data=root / "center",
        repo=str(repo.bare),
        branch="main",
        watch=False,
        poll_interval=3600,
        hosts=["127.0.0.1"],
    )
    assert built.ctx.enrollment is not None
    service = built.ctx.enrollment.service
    spec = JoinTokenSpec(groups=(GroupName(GROUP),))
    t = time.monotonic()
    pems = []
    (root / "nodes").mkdir()
    for i, (token, _record) in enumerate(service.create_join_tokens(spec, conns, created_by="b")):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
        csr_pem = csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        enrolled = service.enroll(str(token), csr_pem, requested_name=f"sim-{i:05d}")
        pem = root / "nodes" / f"{i}.pem"
        pem.write_bytes(
            enrolled.certificate.cert_pem
            + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        pems.append(str(pem))
    print(f"{conns} nodes enrolled in {time.monotonic() - t:.1f} s", flush=True)
    listing, anchor = root / "nodes.json", root / "anchor.pem"
    listing.write_text(json.dumps(pems))
    anchor.write_bytes(built.tls.creds.anchor_pem)
    return repo, built, listing, anchor


async def center_main(args: argparse.Namespace, root: Path) -> None:
    from konorkestra.center.agentapi.entries import latest_rows
    from konorkestra.center.app.factory import begin_shutdown
    from konorkestra.cli.center import _bind
    from konorkestra.demo.edits import API_FILE, checkout_api

    repo, built, listing, anchor = prepare(root, args.conns)
    sock = _bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = built.tls.server(
        built.app,
        host="127.0.0.1",
        port=port,
        log_level="warning",  # type: ignore[attr-defined]
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server.before_shutdown.append(lambda: begin_shutdown(built.ctx))  # type: ignore[attr-defined]
    if args.ssl_buffer:
        asyncio.sslproto.SSLProtocol.max_size = args.ssl_buffer * 1024
    print(f"TLS read buffer per connection: {asyncio.sslproto.SSLProtocol.max_size // 1024} KiB")
    ctx, engine = built.ctx, built.ctx.engine  # type: ignore[attr-defined]
    released: dict[int, float] = {}
    ctx.releaser.listeners.append(lambda g, s: released.setdefault(s, time.monotonic()))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_for(lambda: server.ready, 60, "the Center serving")
    while not await asyncio.to_thread(latest_rows, engine, [GROUP]):
        await asyncio.sleep(0.1)
    gc.collect()
    rss0 = rss_kib()
    if args.trace:
        tracemalloc.start(10)
        snap0 = tracemalloc.take_snapshot()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE),
        "--client",
        str(listing),
        str(port),
        str(anchor),
        stdout=asyncio.subprocess.PIPE,
    )
    answers: list[tuple[float, int]] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            parts = line.split()
            if parts and parts[0] == b"a":
                answers.append((float(parts[1]), int(parts[2])))

    reading = asyncio.create_task(read())
    notifier = ctx.agent_api.notifier
    try:
        t = time.monotonic()
        await wait_for(lambda: notifier.parked() >= args.conns, 60 + args.conns / 20, "parking")
        print(f"{args.conns} connections parked in {time.monotonic() - t:.1f} s", flush=True)
        await asyncio.sleep(1)  # let the handshakes' garbage go
        gc.collect()
        rss1 = rss_kib()
        per = (rss1 - rss0) / args.conns
        print(
            f"Center RSS {rss0 / 1024:.0f} -> {rss1 / 1024:.0f} MiB: {per:.1f} KiB per parked "
            f"connection (load {os.getloadavg()[0]:.2f})",
            flush=True,
        )
        if args.trace:
            report_trace(snap0, tracemalloc.take_snapshot(), args.conns, args.trace, rss1 - rss0)
            tracemalloc.stop()
        if args.idle:
            cpu0, t0 = time.process_time(), time.monotonic()
            await asyncio.sleep(args.idle)
            cpu = (time.process_time() - cpu0) / (time.monotonic() - t0) * 100
            print(f"idle Center CPU over {args.idle:.0f} s: {cpu:.1f} %", flush=True)
        for k in range(args.fanout):
            seq = max(s for _t, s in answers) + 1 if answers else 0
            repo.write(API_FILE, checkout_api(3 + k, timeout_ms=500 + k), append=True)  # type: ignore[attr-defined]
            await asyncio.to_thread(repo.commit, f"bench: fan-out {k}")  # type: ignore[attr-defined]
            await asyncio.to_thread(repo.push)  # type: ignore[attr-defined]
            ctx.ingest.trigger("bench")
            await wait_for(
                lambda seq=seq: (
                    sum(s >= seq for _t, s in answers) >= args.conns and seq in released
                ),
                120,
                f"fan-out {k}",
            )
            took = [(t - released[seq]) * 1000 for t, s in answers if s == seq]
            print(
                f"fan-out {k} (sequence {seq}): {len(took)} answers, first "
                f"{min(took):.0f} ms, p50 {pct(took, 50):.0f} ms, p99 {pct(took, 99):.0f} ms, "
                f"max {max(took):.0f} ms (load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
    finally:
        proc.terminate()
        await proc.wait()
        reading.cancel()
        server.should_exit = True
        await serving


def report_trace(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, conns: int, top: int, rss: int
) -> None:
    stats = after.compare_to(before, "lineno")
    traced = sum(s.size_diff for s in stats) / 1024
    print(
        f"Python heap (tracemalloc): {traced / conns:.1f} KiB per connection; "
        f"not traced (C: OpenSSL, allocator): {(rss - traced) / conns:.1f} KiB",
        flush=True,
    )
    for key in ("filename", "lineno"):
        print(f" by {key}:")
        for stat in after.compare_to(before, key)[:top]:
            frame = stat.traceback[0]
            where = Path(frame.filename).name + (f":{frame.lineno}" if key == "lineno" else "")
            print(
                f"  {stat.size_diff / 1024 / conns:8.2f} KiB/conn  "
                f"{stat.count_diff / conns:6.1f} blocks/conn  {where}"
            )


async def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def main() -> None:
    if sys.argv[1:2] == ["--client"]:
        asyncio.run(client_main(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--ssl-buffer", type=int, default=0, help="KiB (default: the Center's)")
    parser.add_argument("--trace", type=int, default=0, help="show the top N allocation sites")
    parser.add_argument("--idle", type=float, default=0, help="seconds of idle CPU to measure")
    parser.add_argument("--fanout", type=int, default=0, help="Releases to time")
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kbench-conn-"))
    try:
        asyncio.run(center_main(args, root))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
