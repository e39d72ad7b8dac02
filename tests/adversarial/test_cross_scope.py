"""A node forges reports about another node's Group, over real TLS with its own
real certificate (issue 12, finding 1).

Real processes: the ``konorkestra center`` (TLS, enrollment, agent API) and two
nodes joined with ``konorkestra agent join`` and different scopes; ``web-a``
also runs its agent, whose own reports must still be taken. Then ``web-a``
posts, with the certificate and key its agent holds, reports about ``payments``
(``db-a``'s Group): each is ``403 group_out_of_scope`` and the audit log, read
through ``GET /v1/audit`` with the admin token, holds no trace of them.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.agents import AgentProcess, TlsCenter
from tests.helpers.configrepo import seeded
from tests.helpers.poll import wait_for


@dataclass
class World:
    center: TlsCenter
    web: AgentProcess
    db: AgentProcess

    def as_node(self, agent: AgentProcess, method: str, path: str, **kw: Any) -> httpx.Response:
        """A request with ``agent``'s own node certificate, trusting only its pinned anchor."""
        ident = agent.data / "identity"
        tls = ssl.create_default_context(cafile=str(ident / "center-ca.crt"))
        tls.load_cert_chain(str(ident / "node.pem"))
        with httpx.Client(base_url=self.center.url, verify=tls, timeout=30) as client:
            return client.request(method, path, **kw)

    def audit(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.center.get("/v1/audit", params={"after": after, "limit": 5000})
            events += page["events"]
            if page["next"] is None:
                return events
            after = page["next"]

    def applied(self, agent: AgentProcess) -> dict[str, Any]:
        state = self.center.get(f"/v1/nodes/{agent.node_id}")["state"]
        return {g["group"]: g["applied"] for g in state if g["applied"]}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    bare, _work = seeded(tmp_path)
    center = TlsCenter(tmp_path / "center", repo=bare)
    agents: list[AgentProcess] = []
    try:
        center.start()
        wait_for(lambda: center.latest("payments"), timeout=30, what="the first releases")
        web = AgentProcess(tmp_path / "web-a", center).join(center.join_token("checkout"))
        db = AgentProcess(tmp_path / "db-a", center).join(center.join_token("payments"))
        agents.append(web)
        web.start()
        yield World(center, web, db)
    finally:
        for agent in agents:
            agent.stop()
        center.stop()


def test_a_node_cannot_report_about_another_nodes_group(world: World) -> None:
    center, web = world.center, world.web
    # The real agent's own reports pass the scope and release-id checks.
    mine = center.latest("checkout")
    assert mine is not None
    wait_for(lambda: world.applied(web).get("checkout"), timeout=30, what="web-a's own report")
    assert world.applied(web)["checkout"]["release"] == mine["id"]

    theirs = center.latest("payments")
    assert theirs is not None
    applied = {"group": "payments", "release": theirs["id"], "sequence": theirs["sequence"],
               "digest": theirs["digest"], "at": 1.0}  # fmt: skip
    forgeries = [
        {"applied": [applied]},
        {"refused": [{**applied, "code": "BadSignature", "reason": "forged"}]},
        {"stale": {"payments": True}},
        # under its own Group, but naming the other Group's release
        {"applied": [{**applied, "group": "checkout"}]},
    ]
    for body in forgeries:
        resp = world.as_node(web, "POST", "/v1/agent/reports", json=body)
        assert resp.status_code == 403, resp.text
        error = resp.json()["error"]
        assert error["code"] == "group_out_of_scope" and error["details"]["groups"] == ["payments"]
    resp = world.as_node(web, "GET", "/v1/agent/desired", params={"have": "payments:0"})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "group_out_of_scope"

    events = world.audit()
    by_web = [e for e in events if e["actor"] == f"node:{web.node_id}"]
    assert any(e["details"].get("group") == "checkout" for e in by_web)  # the check can see
    assert not [e for e in by_web if "payments" in repr(e["details"])], by_web
    assert "payments" not in world.applied(web)
    assert center.get("/v1/audit/verify")["ok"] is True
    # The node whose Group it is may report it.
    ok = world.as_node(world.db, "POST", "/v1/agent/reports", json={"applied": [applied]})
    assert ok.status_code == 200, ok.text
    assert world.applied(world.db)["payments"]["release"] == theirs["id"]
