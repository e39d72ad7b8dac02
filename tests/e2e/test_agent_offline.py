"""Offline survival: the Center dies, agents keep serving, go stale, and catch up later."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers.agents import AgentProcess, TlsCenter
from tests.helpers.configrepo import payments_common, seeded
from tests.helpers.poll import wait_for

pytestmark = pytest.mark.slow
FRESHNESS_TTL = 6.0


def test_agents_survive_a_center_outage_and_catch_up(tmp_path: Path) -> None:
    bare, work = seeded(tmp_path)
    center = TlsCenter(tmp_path / "center", repo=bare, freshness_ttl=FRESHNESS_TTL).start()
    agents: list[AgentProcess] = []
    try:
        first = wait_for(lambda: center.latest("payments"), timeout=30, what="a release")
        for name in ("node1", "node2"):
            agent = AgentProcess(tmp_path / name, center)
            agents.append(agent.join(center.join_token("payments")).start())
        for agent in agents:
            wait_for(lambda a=agent: a.serves(first["id"], "payments"), timeout=30,
                     what=f"{agent.data.name} to serve {first['id']}")  # fmt: skip
            assert agent.get("payments")["stale"] is False

        # The Center dies: agents keep answering.
        center.kill()
        for agent in agents:
            reply = agent.get("payments")
            assert reply["ok"] and reply["release"] == first["id"]

        # An agent restarted with the Center down serves from its store.
        restarted, steady = agents
        steady_pid = steady.proc.pid if steady.proc else None
        restarted.stop()
        restarted.start()
        reply = restarted.get("payments")
        assert reply["ok"] and reply["release"] == first["id"]
        assert reply["config"]["payments-common"]["currency_default"] == "EUR"

        # Once the last freshness statement expires, the config is served but stale.
        killed_at = time.monotonic()
        for agent in agents:
            wait_for(lambda a=agent: a.get("payments")["stale"], timeout=FRESHNESS_TTL + 10,
                     what=f"{agent.data.name} to report stale")  # fmt: skip
            assert agent.get("payments")["release"] == first["id"]
        wait_for(lambda: restarted.status()["stale"] is True, timeout=10, what="status: stale")
        print(f"\nstale after {time.monotonic() - killed_at:.1f}s (ttl {FRESHNESS_TTL}s)")

        # A change pushed meanwhile is delivered when the Center is back; no agent restarts.
        work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
        work.write("groups/payments.yaml", GROUP_V2)
        work.commit("payments-common v2: USD")
        work.push()
        center.start()
        back = time.monotonic()
        second = wait_for(
            lambda: (r := center.latest("payments")) and r["sequence"] > first["sequence"] and r,
            timeout=30, what="the new release",
        )  # fmt: skip
        for agent in agents:
            wait_for(lambda a=agent: a.serves(second["id"], "payments"), timeout=30,
                     what=f"{agent.data.name} to catch up")  # fmt: skip
            reply = agent.get("payments")
            assert reply["stale"] is False
            assert reply["config"]["payments-common"]["currency_default"] == "USD"
        print(f"caught up {time.monotonic() - back:.1f}s after the Center restarted")
        assert steady.proc is not None and steady.proc.pid == steady_pid
        assert steady.proc.poll() is None
    finally:
        for agent in agents:
            agent.stop()
        center.stop()


GROUP_V2 = """\
apiVersion: konorkestra.io/v1
kind: Group
metadata: {name: payments}
spec:
  configSets: [payments-common@2]
  policy: all-at-once
"""


def test_certificate_renewal_keeps_the_agent_syncing(tmp_path: Path) -> None:
    """Node certificates of 155 s (minus the CA's 5-minute back-dating) are due for
    renewal ~3 s after issue: the agent renews, switches connections, keeps syncing."""
    bare, work = seeded(tmp_path)
    center = TlsCenter(tmp_path / "center", repo=bare, cert_lifetime=155).start()
    agent = AgentProcess(tmp_path / "node1", center)
    try:
        first = wait_for(lambda: center.latest("payments"), timeout=30, what="a release")
        agent.join(center.join_token("payments")).start()
        serial = center.get(f"/v1/nodes/{agent.node_id}")["cert_serial"]
        wait_for(lambda: center.get(f"/v1/nodes/{agent.node_id}")["cert_serial"] != serial,
                 timeout=30, what="a renewed certificate")  # fmt: skip
        assert agent.serves(first["id"], "payments")
        work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
        work.write("groups/payments.yaml", GROUP_V2)
        work.commit("payments-common v2")
        work.push()
        second = wait_for(
            lambda: (r := center.latest("payments")) and r["sequence"] > first["sequence"] and r,
            timeout=30, what="the new release",
        )  # fmt: skip
        wait_for(lambda: agent.serves(second["id"], "payments"), timeout=30,
                 what="the agent to sync with its renewed certificate")  # fmt: skip
        assert "renewed" in agent.log.read_text()
    finally:
        agent.stop()
        center.stop()
