"""The agent stream (``GET /v1/agent/stream``) over real TLS, with a real node certificate.

Real processes: ``konorkestra center`` (TLS, enrollment, agent API; freshness
TTL 5 s, so the stream refreshes every 2 s) and nodes joined with ``konorkestra
agent join``. The stream is read with the node's own certificate and key, as
the agent does; a push goes through ``git push``; a revocation through the
admin API.
"""

from __future__ import annotations

import json
import queue
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.agents import AgentProcess, TlsCenter
from tests.helpers.configrepo import payments_common, seeded
from tests.helpers.git import WorkRepo
from tests.helpers.poll import wait_for


class StreamReader:
    """Reads a node's stream in a thread; lines arrive on a queue (``None`` at the end)."""

    def __init__(self, center: TlsCenter, agent: AgentProcess, have: str = "") -> None:
        ident = agent.data / "identity"
        tls = ssl.create_default_context(cafile=str(ident / "center-ca.crt"))
        tls.load_cert_chain(str(ident / "node.pem"))
        self.client = httpx.Client(base_url=center.url, verify=tls, timeout=httpx.Timeout(30.0))
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.status = 0
        self.error: Exception | None = None
        self.headers: dict[str, str] = {}
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(have,), daemon=True)
        self._thread.start()
        assert self._opened.wait(30), "the stream did not open"

    def _read(self, have: str) -> None:
        try:
            with self.client.stream("GET", "/v1/agent/stream", params={"have": have}) as resp:
                self.status, self.headers = resp.status_code, dict(resp.headers)
                self._opened.set()
                for line in resp.iter_lines():
                    self.lines.put(line.encode())
        except httpx.HTTPError as exc:
            self.error = exc
        finally:
            self._opened.set()
            self.lines.put(None)

    def next(self, timeout: float = 30.0, *, skip_heartbeats: bool = True) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line is None:
                print("stream ended:", repr(self.error))
                return None
            if line or not skip_heartbeats:
                return json.loads(line) if line else {}

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TlsCenter, WorkRepo, AgentProcess]]:
    bare, work = seeded(tmp_path)
    center = TlsCenter(tmp_path / "center", repo=bare, freshness_ttl=5.0)
    try:
        center.start()
        wait_for(lambda: center.latest("payments"), timeout=30, what="the first release")
        node = AgentProcess(tmp_path / "node1", center).join(center.join_token("payments"))
        yield center, work, node
    finally:
        center.stop()


def push_payments(work: WorkRepo, version: int) -> None:
    work.write("configsets/payments-common.yaml", payments_common(version, "CHF"))
    work.commit(f"payments-common v{version}")
    work.push()


def test_the_stream_answers_at_once_then_on_each_release_and_refreshes_freshness(
    world: tuple[TlsCenter, WorkRepo, AgentProcess],
) -> None:
    center, work, node = world
    first = center.latest("payments")
    assert first is not None
    stream = StreamReader(center, node)
    try:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("application/x-ndjson")
        assert stream.headers["cache-control"] == "no-store"
        hello = stream.next()
        assert hello["node"] == node.node_id and hello["freshness"]
        assert [r["id"] for r in hello["releases"]] == [first["id"]]

        # No news: a freshness refresh (TTL 5 s -> every 2 s), a new statement, no release.
        refresh = stream.next(timeout=10)
        assert refresh["releases"] == [] and refresh["freshness"] != hello["freshness"]

        push_payments(work, 2)
        while True:  # refreshes may come first
            frame = stream.next(timeout=30)
            assert frame is not None, "the stream ended"
            if frame["releases"]:
                break
        new = center.latest("payments")
        assert new is not None and new["sequence"] == first["sequence"] + 1
        assert [r["id"] for r in frame["releases"]] == [new["id"]]
    finally:
        stream.close()


def test_a_revoked_node_s_stream_is_closed_at_once(
    world: tuple[TlsCenter, WorkRepo, AgentProcess],
) -> None:
    center, _work, node = world
    stream = StreamReader(center, node, have="payments:0")
    try:
        assert stream.next()["releases"]
        started = time.monotonic()
        resp = center.request("POST", f"/v1/nodes/{node.node_id}/revoke", json={})
        assert resp.status_code == 200, resp.text
        assert stream.next(timeout=5) == {"closed": "node_revoked"}
        assert stream.next(timeout=5) is None  # the body ended
        assert time.monotonic() - started < 1.5
        # A new stream is refused like every agent request of a revoked node.
        again = StreamReader(center, node)
        assert again.status == 403
        again.close()
    finally:
        stream.close()


def test_the_stream_refuses_a_group_outside_the_node_s_scope(
    world: tuple[TlsCenter, WorkRepo, AgentProcess],
) -> None:
    center, _work, node = world
    stream = StreamReader(center, node, have="checkout:0")
    try:
        assert stream.status == 403
    finally:
        stream.close()


@pytest.mark.parametrize("sync", ["stream", "long-poll"])
def test_a_real_agent_follows_pushes_in_either_sync_mode(
    world: tuple[TlsCenter, WorkRepo, AgentProcess], tmp_path: Path, sync: str
) -> None:
    center, work, _node = world
    agent = AgentProcess(tmp_path / f"agent-{sync}", center, config=f'sync = "{sync}"\n')
    agent.join(center.join_token("payments")).start()
    try:
        first = center.latest("payments")
        assert first is not None
        wait_for(lambda: agent.serves(first["id"], "payments"), timeout=30, what="the first")
        assert agent.status()["sync"]["mode"] == sync
        push_payments(work, 2)
        new = wait_for(
            lambda: (r := center.latest("payments")) and r["sequence"] > first["sequence"] and r,
            timeout=30, what="the release of the push",
        )  # fmt: skip
        wait_for(lambda: agent.serves(new["id"], "payments"), timeout=30, what="the new release")
    finally:
        agent.stop()
