"""The sync loop against a hostile or broken Center: refusals, reports, blob repair.

The Center is a small in-test Starlette app speaking the agent API
(``konorkestra.center.agentapi.routes``) from memory, reached through httpx's ASGI
transport; the agent is the real :class:`~konorkestra.agent.daemon.Agent` with
its real store and a real Unix socket.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import inspect
import json
import shutil
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from konorkestra.agent.config import AgentConfig
from konorkestra.agent.daemon import Agent
from konorkestra.agent.sync import Node
from konorkestra.model.canonical import canonical_bytes, digest_of
from konorkestra.model.release import ConfigSetRef, PolicyRef
from konorkestra.trust import (
    FreshnessStatement,
    LatestRelease,
    ReleaseStatement,
    Signer,
    Source,
    make_root,
    sign_freshness,
    sign_release,
)

NODE = "node-a"
GROUP = "checkout"
T = TypeVar("T")


def configset(version: int, data: dict[str, Any]) -> bytes:
    return canonical_bytes({"apiVersion": "konorkestra.io/v1", "kind": "ConfigSet",
                            "metadata": {"name": "checkout-api", "version": version},
                            "spec": {"data": data}})  # fmt: skip


@dataclass
class Rel:
    sequence: int
    release_id: str
    digest: str
    bundle: bytes
    blob: bytes


class FakeCenter:
    """Serves whatever Releases the test hands it, signed with its own keys."""

    def __init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self.root_key, self.release_key, self.ts_key = (Signer.generate() for _ in range(3))
        self.root = make_root(
            root=[self.root_key.public_key], release=[self.release_key.public_key],
            timestamp=[self.ts_key.public_key], expires=now + dt.timedelta(days=30),
            signers=[self.root_key],
        )  # fmt: skip
        self.offered: list[Rel] = []
        self.ignore_have = False
        self.latest: Rel | None = None
        self.blobs: dict[str, bytes] = {}
        self.corrupt_blobs: set[str] = set()
        self.inline = False  # inline each offered release's blob in the answer
        self.corrupt_inline: set[str] = set()
        self.blob_requests: list[str] = []
        self.reports: list[dict[str, Any]] = []
        self.changed: asyncio.Event | None = None

    def make(self, sequence: int, data: dict[str, Any], previous: str | None = None) -> Rel:
        now = dt.datetime.now(dt.UTC)
        blob = configset(sequence, data)
        st = ReleaseStatement.create(
            group=GROUP, sequence=sequence,
            configsets=[ConfigSetRef("checkout-api", sequence, digest_of(blob), len(blob))],
            policy=PolicyRef("all-at-once", "sha256:" + "cd" * 32),
            source=Source("config-repo", "0" * 40, "Ana <ana@example.org>", now),
            now=now, previous=previous,
        )  # fmt: skip
        self.blobs[digest_of(blob)] = blob
        return Rel(sequence, str(st.release_id()), digest_of(st.to_payload()),
                   sign_release(st, [self.release_key]), blob)  # fmt: skip

    def offer(self, *rels: Rel, latest: Rel | None = None) -> None:
        self.offered = list(rels)
        self.latest = latest or (rels[-1] if rels else self.latest)
        if self.changed is not None:
            self.changed.set()

    async def desired(self, request: Request) -> Response:
        if self.changed is None:
            self.changed = asyncio.Event()
        have = dict(e.split(":") for e in request.query_params["have"].split(",") if e)
        wait = float(request.query_params["wait"])

        def news() -> list[Rel]:
            return [r for r in self.offered
                    if self.ignore_have or r.sequence > int(have.get(GROUP, 0))]  # fmt: skip

        if not news():
            self.changed.clear()
            try:
                async with asyncio.timeout(wait):
                    await self.changed.wait()
            except TimeoutError:
                pass
        latest = [] if self.latest is None else [
            LatestRelease(GROUP, self.latest.sequence, self.latest.digest)]  # fmt: skip
        fs = FreshnessStatement.create(node=NODE, latest=latest, now=dt.datetime.now(dt.UTC))

        def inlined(r: Rel) -> dict[str, str]:
            if not self.inline:
                return {}
            d = digest_of(r.blob)
            data = r.blob.replace(b"250", b"999") if d in self.corrupt_inline else r.blob
            return {d: base64.b64encode(data).decode()}

        return JSONResponse({
            "node": NODE,
            "releases": [{"group": GROUP, "sequence": r.sequence, "id": r.release_id,
                          "digest": r.digest, "bundle": base64.b64encode(r.bundle).decode(),
                          "blobs": inlined(r)}
                         for r in news()],
            "freshness": base64.b64encode(sign_freshness(fs, [self.ts_key])).decode(),
            "wait": 0,
        })  # fmt: skip

    async def blob(self, request: Request) -> Response:
        digest = request.path_params["digest"]
        self.blob_requests.append(digest)
        bundles = {
            digest_of(r.bundle): r.bundle for r in [*self.offered, *filter(None, [self.latest])]
        }
        data = self.blobs.get(digest) or bundles.get(digest)
        if data is None:
            return JSONResponse({"error": {"code": "not_found", "message": "no"}}, 404)
        if digest in self.corrupt_blobs:
            data = data.replace(b"250", b"999")
        return Response(data)

    async def report(self, request: Request) -> Response:
        self.reports.append(json.loads(await request.body()))
        return JSONResponse({"stored": 1})

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/agent/desired", self.desired),
            Route("/v1/agent/blobs/{digest}", self.blob),
            Route("/v1/agent/reports", self.report, methods=["POST"]),
        ])  # fmt: skip

    def refusals(self) -> list[dict[str, Any]]:
        return [r for rep in self.reports for r in rep["refused"]]


CONFIG = AgentConfig(poll_wait=2.0, report_interval=0.2, backoff_max=0.5, clock_skew=1.0)


def make_agent(center: FakeCenter, data: Path) -> Agent:
    data.mkdir(mode=0o700, exist_ok=True)
    app = center.app()

    def factory() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://center")

    config = dataclasses.replace(CONFIG, socket=data / "agent.sock")
    return Agent(data, config, Node(NODE, (GROUP,), center.root), factory)


def uds_get(path: Path) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(json.dumps({"id": 1, "op": "get", "group": GROUP}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            buf += s.recv(65536)
    reply: dict[str, Any] = json.loads(buf)
    return reply


async def until(
    probe: Callable[[], T | Awaitable[T | None] | None], what: str, timeout: float = 10.0
) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def with_agent(
    center: FakeCenter, data: Path, body: Callable[[Agent], Awaitable[None]]
) -> None:
    agent = make_agent(center, data)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await until(lambda: agent.ready.is_set() or task.done(), "the agent to start")
        if task.done():
            task.result()
        await body(agent)
    finally:
        stop.set()
        await task


async def get(agent: Agent) -> dict[str, Any]:
    return await asyncio.to_thread(uds_get, agent.socket)


async def served_sequence(agent: Agent) -> int | None:
    reply = await get(agent)
    return reply["sequence"] if reply.get("ok") else None


async def serves(agent: Agent, sequence: int) -> bool:
    return await served_sequence(agent) == sequence


def test_tampered_release_is_refused_reported_and_previous_kept(tmp_path: Path) -> None:
    center = FakeCenter()
    r1 = center.make(1, {"timeout_ms": 250})
    r2 = center.make(2, {"timeout_ms": 300}, previous=r1.release_id)
    evil = center.make(2, {"timeout_ms": 1}, previous=r1.release_id)
    bundle = json.loads(r2.bundle)
    bundle["dsseEnvelope"]["payload"] = json.loads(evil.bundle)["dsseEnvelope"]["payload"]
    tampered = Rel(2, r2.release_id, r2.digest, canonical_bytes(bundle), evil.blob)

    async def body(agent: Agent) -> None:
        center.offer(r1)
        await until(lambda: serves(agent, 1), "release 1 to be served")
        center.offer(tampered, latest=r2)
        refused = await until(center.refusals, "a refusal report")
        assert refused[0]["code"] == "BadSignature"
        assert refused[0]["sequence"] == 2 and refused[0]["group"] == GROUP
        reply = await get(agent)
        assert reply["sequence"] == 1 and reply["config"] == {"checkout-api": {"timeout_ms": 250}}
        assert agent.store is not None and agent.store.high_water(GROUP)[0] == 1  # type: ignore[index]
        # The genuine release 2 is then accepted.
        center.offer(r2)
        await until(lambda: serves(agent, 2), "release 2 to be served")

        def applied() -> list[int]:
            return [a["sequence"] for rep in center.reports for a in rep["applied"]]

        assert await until(lambda: applied() == [1, 2], "both applied releases reported")

    asyncio.run(with_agent(center, tmp_path / "data", body))


def test_replayed_release_is_refused_and_newer_one_kept(tmp_path: Path) -> None:
    center = FakeCenter()
    r1 = center.make(1, {"timeout_ms": 250})
    r2 = center.make(2, {"timeout_ms": 300}, previous=r1.release_id)

    async def body(agent: Agent) -> None:
        center.offer(r1, r2)
        await until(lambda: serves(agent, 2), "release 2 to be served")
        center.ignore_have = True  # a replaying attacker: offers the old, validly signed one
        center.offer(r1, latest=r2)
        refused = await until(center.refusals, "a refusal report")
        assert refused[0]["code"] == "RollbackAttack" and refused[0]["sequence"] == 1
        assert await served_sequence(agent) == 2
        assert agent.syncer is not None and agent.syncer.stats.refusals >= 1

    asyncio.run(with_agent(center, tmp_path / "data", body))


def test_blob_with_wrong_content_is_refused(tmp_path: Path) -> None:
    center = FakeCenter()
    r1 = center.make(1, {"timeout_ms": 250})
    r2 = center.make(2, {"timeout_ms": 250, "retries": 3}, previous=r1.release_id)
    center.corrupt_blobs.add(digest_of(r2.blob))

    async def body(agent: Agent) -> None:
        center.offer(r1)
        await until(lambda: serves(agent, 1), "release 1 to be served")
        center.offer(r2)
        refused = await until(center.refusals, "a refusal report")
        assert refused[0]["code"] == "SubjectMismatch"
        assert await served_sequence(agent) == 1

    asyncio.run(with_agent(center, tmp_path / "data", body))


def _served_once(center: FakeCenter, data: Path) -> Rel:
    """Release 1, committed and served by an agent on ``data`` that has stopped since."""
    r1 = center.make(1, {"timeout_ms": 250})

    async def first(agent: Agent) -> None:
        center.offer(r1)
        await until(lambda: serves(agent, 1), "release 1 to be served")

    asyncio.run(with_agent(center, data, first))
    return r1


def test_corrupted_blob_on_disk_is_repaired_from_the_center(tmp_path: Path) -> None:
    center = FakeCenter()
    data = tmp_path / "data"
    r1 = _served_once(center, data)
    digest = digest_of(r1.blob)
    path = data / "blobs" / "sha256" / digest[7:9] / digest[7:]
    path.chmod(0o644)
    path.write_bytes(r1.blob.replace(b"250", b"666"))
    center.blob_requests.clear()

    async def second(agent: Agent) -> None:
        assert digest in center.blob_requests  # recovery noticed and re-fetched it
        assert await served_sequence(agent) == 1
        assert (await get(agent))["config"] == {"checkout-api": {"timeout_ms": 250}}
        assert agent.store is not None and not agent.store.needs_repair

    asyncio.run(with_agent(center, data, second))
    assert path.read_bytes() == r1.blob


def test_inlined_blobs_are_used_without_a_second_round_trip(tmp_path: Path) -> None:
    center = FakeCenter()
    center.inline = True
    r1 = center.make(1, {"timeout_ms": 250})
    r2 = center.make(2, {"timeout_ms": 300}, previous=r1.release_id)

    async def body(agent: Agent) -> None:
        center.offer(r1)
        await until(lambda: serves(agent, 1), "release 1 to be served")
        center.offer(r2)
        await until(lambda: serves(agent, 2), "release 2 to be served")
        assert (await get(agent))["config"] == {"checkout-api": {"timeout_ms": 300}}
        assert center.blob_requests == []  # every blob came with the answer

    asyncio.run(with_agent(center, tmp_path / "data", body))


def test_a_tampered_inlined_blob_is_refused_like_a_fetched_one(tmp_path: Path) -> None:
    center = FakeCenter()
    center.inline = True
    r1 = center.make(1, {"timeout_ms": 250})
    r2 = center.make(2, {"timeout_ms": 250, "retries": 3}, previous=r1.release_id)
    center.corrupt_inline.add(digest_of(r2.blob))

    async def body(agent: Agent) -> None:
        center.offer(r1)
        await until(lambda: serves(agent, 1), "release 1 to be served")
        center.offer(r2)
        refused = await until(center.refusals, "a refusal report")
        assert refused[0]["code"] == "SubjectMismatch" and refused[0]["sequence"] == 2
        assert await served_sequence(agent) == 1
        assert agent.store is not None and agent.store.high_water(GROUP)[0] == 1  # type: ignore[index]
        digest = digest_of(r2.blob)
        assert not (agent.data_dir / "blobs" / "sha256" / digest[7:9] / digest[7:]).exists()

    asyncio.run(with_agent(center, tmp_path / "data", body))


def test_a_center_without_the_stream_route_is_long_polled(tmp_path: Path) -> None:
    """The fake Center has only the long-poll: the agent falls back to it and syncs."""
    center = FakeCenter()
    r1 = center.make(1, {"timeout_ms": 250})

    async def body(agent: Agent) -> None:
        assert agent.config.sync == "stream"
        center.offer(r1)
        await until(lambda: serves(agent, 1), "release 1 to be served")
        assert agent.syncer.stats.mode == "long-poll"

    asyncio.run(with_agent(center, tmp_path / "data", body))


def test_a_store_emptied_while_trust_was_kept_is_offered_its_release_again(
    tmp_path: Path,
) -> None:
    """``have`` is what the store holds, not the high-water mark (issue 18's backup tests
    found an agent whose store was deleted but ``trust/`` kept that served nothing)."""
    center = FakeCenter()
    data = tmp_path / "data"
    _served_once(center, data)
    for part in ("releases", "current", "blobs", "log"):
        shutil.rmtree(data / part)
    assert (data / "trust" / "high_water.json").exists()

    async def again(agent: Agent) -> None:
        await until(lambda: serves(agent, 1), "release 1 to be served again")
        assert agent.syncer is not None and agent.syncer.stats.commits == 1  # committed anew
        assert agent.syncer.have() == {"checkout": 1}

    asyncio.run(with_agent(center, data, again))
