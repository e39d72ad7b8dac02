"""Push → ``konorkestra center`` → two agents → SDK watchers → reports: real processes, mTLS."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.agents import AgentProcess, CenterAt, Watcher
from tests.helpers.center_proc import CenterProcess, konorctl
from tests.helpers.configrepo import seeded
from tests.helpers.git import WorkRepo
from tests.helpers.poll import wait_for

pytestmark = pytest.mark.slow

CHECKOUT_API_V3 = """
---
apiVersion: konorkestra.io/v1
kind: ConfigSet
metadata:
  name: checkout-api
  version: 3
spec:
  schema:
    $ref: schemas/checkout-api.schema.json
  data:
    listen_port: 8080
    timeout_ms: 900
    max_connections: 1024
    upstreams:
      - name: inventory
        url: http://inventory.internal:9000
"""


def latest(center: CenterProcess, group: str) -> dict[str, Any] | None:
    releases = center.get("/v1/releases", params={"group": group, "limit": 1000})["releases"]
    return max(releases, key=lambda r: r["sequence"]) if releases else None


@pytest.fixture
def world(
    tmp_path: Path, center_factory: Callable[..., CenterProcess]
) -> Iterator[tuple[CenterProcess, WorkRepo, list[AgentProcess]]]:
    """The real ``konorkestra center`` (TLS on by default) and two joined, running agents.

    ``checkout`` takes the all-at-once Policy here: this test is about a push
    reaching every watcher, and the example canary Policy (5 %, a 5-minute bake,
    manual approval) holds the second node back on purpose.
    """
    bare, work = seeded(tmp_path, push=False)
    group = work.path / "groups" / "checkout.yaml"
    text = group.read_text()
    assert "policy: canary" in text
    group.write_text(text.replace("policy: canary", "policy: all-at-once"))
    work.commit("checkout: all at once")
    work.push()
    center = center_factory(bare)
    agents: list[AgentProcess] = []
    try:
        wait_for(lambda: latest(center, "checkout"), timeout=30, what="the first release")
        for name in ("node1", "node2"):
            grant = json.loads(konorctl(center, "token", "create", "--groups",
                                        "checkout,payments", "-o", "json").stdout)  # fmt: skip
            agent = AgentProcess(tmp_path / name, CenterAt(center.url, grant["ca_pin"]))
            agents.append(agent.join(grant["token"]).start())
        yield center, work, agents
    finally:
        for agent in agents:
            agent.stop()


def test_push_reaches_watchers_on_two_agents_and_the_center_sees_it(
    world: tuple[CenterProcess, WorkRepo, list[AgentProcess]],
) -> None:
    center, work, agents = world
    first = latest(center, "checkout")
    assert first is not None
    for agent in agents:
        wait_for(lambda a=agent: a.serves(first["id"], "checkout"), timeout=30,
                 what=f"{agent.data.name} to serve {first['id']}")  # fmt: skip
    watchers = [Watcher(agent, "checkout").start() for agent in agents]
    try:
        assert all(w.events[0]["release"] == first["id"] for w in watchers)

        with open(work.path / "configsets" / "checkout-api.yaml", "a") as f:
            f.write(CHECKOUT_API_V3)
        work.commit("checkout-api v3: longer timeout")
        t0 = time.time()
        work.push()
        new = wait_for(
            lambda: (r := latest(center, "checkout")) and r["sequence"] > first["sequence"] and r,
            timeout=30, what="the release of the push",
        )  # fmt: skip
        seen = [
            wait_for(lambda w=w: w.saw(new["id"]), timeout=30, what="the watcher's new config")
            for w in watchers
        ]
        latencies = [round(s["t"] - t0, 3) for s in seen]
        print(f"\npush -> watch event latency (s): {latencies}")
        for s in seen:
            assert s["config"]["checkout-api"]["timeout_ms"] == 900

        # The rollout went to both nodes in one wave, and completed once both watchers acked.
        def completed() -> dict[str, Any] | None:
            st: dict[str, Any] = center.get("/v1/rollouts/checkout")
            done = st["release"]["id"] == new["id"] and st["phase"] == "completed"
            return st if done else None

        rollout = wait_for(completed, timeout=30, what="the rollout of the push to complete")
        assert rollout["policy"]["strategy"] == "all-at-once" and rollout["steps"] == 1
        assert rollout["nodes"]["targeted"] == 2 == rollout["nodes"]["enrolled"]

        # The Center: both nodes on the new release, the watcher process seen with its ack.
        for agent, watcher in zip(agents, watchers, strict=True):

            def acked(a: AgentProcess = agent, w: Watcher = watcher) -> dict[str, object] | None:
                node = center.get(f"/v1/nodes/{a.node_id}")
                group = next(g for g in node["state"] if g["group"] == "checkout")
                if (group["applied"] or {}).get("release") != new["id"]:
                    return None
                proc = next((p for p in group["processes"] if p["pid"] == w.pid), None)
                ok = proc and proc["release"] == new["id"] and (proc["ack"] or {}).get("status")
                return proc if ok == "applied" else None

            proc = wait_for(acked, timeout=30, what=f"{agent.node_id} to report the ack")
            assert proc["exe"] == os.path.realpath(sys.executable)
            assert proc["uid"] == os.getuid() and proc["client"] == "e2e-watcher"
            assert proc["ack"]["error"] is None  # type: ignore[index]

            shown = konorctl(center, "nodes", "show", agent.node_id).stdout
            assert f"group checkout: {new['id']}" in shown
            assert f"pid {watcher.pid}" in shown and "ack applied" in shown
            as_json = json.loads(
                konorctl(center, "nodes", "show", agent.node_id, "-o", "json").stdout
            )
            assert as_json["last_seen"] is not None

            status = agent.status()
            assert status["running"] and status["stale"] is False
            assert status["groups"]["checkout"]["release"] == new["id"]
            assert status["groups"]["payments"]["release"] is not None

        audit = center.get("/v1/audit", params={"limit": 1000})
        actions = [e["action"] for e in audit["events"]]
        assert actions.count("node.release_applied") >= 4  # two groups x two nodes, then v3 x2
    finally:
        for w in watchers:
            w.stop()
