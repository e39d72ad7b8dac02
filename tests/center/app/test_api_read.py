"""Public routes, OpenAPI, metrics and the trust root."""

from __future__ import annotations

from starlette.routing import Route

from konorkestra.center.app.factory import create_app
from konorkestra.center.app.openapi import document
from konorkestra.center.app.openapi_ops import EXCLUDED, OPERATIONS
from konorkestra.trust.root import TrustRoot
from tests.helpers.inproc import Api


def test_health_and_readiness_need_no_token(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["store"] == "ok"


def test_the_trust_root_is_served_verbatim_and_verifies(api: Api) -> None:
    resp = api.client.get("/v1/trust/root")
    assert resp.content == api.opened.trust_root
    assert TrustRoot.from_bytes(resp.content).version == 1


def test_metrics_are_prometheus_text_per_app(api: Api) -> None:
    api.get("/v1/commits")
    api.client.get("/v1/commits/" + "0" * 40)  # a templated path (no token: 401)
    api.client.get("/no/such/route")
    text = api.client.get("/metrics").text
    for method, route, status in [("GET", "/v1/commits", 200),
                                  ("GET", "/v1/commits/{sha}", 401),
                                  ("GET", "unmatched", 404)]:  # fmt: skip
        line = f'{{method="{method}",route="{route}",status="{status}"}}'
        assert "konorkestra_center_http_requests_total" + line in text, line
    other = create_app(api.ctx.__class__(engine=api.ctx.engine, trust_root=b"{}"))
    assert other.state.ctx.metrics.registry is not api.ctx.metrics.registry


def test_openapi_is_served_and_covers_the_operator_app(api: Api) -> None:
    """An app without enrollment or the agent API serves a subset of the document (the
    full Center's routes are compared in test_openapi_contract.py)."""
    served = set()
    for route in api.client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path not in EXCLUDED:
            served |= {(m.lower(), route.path) for m in route.methods or () if m != "HEAD"}
    assert served <= {(op.method, op.path) for op in OPERATIONS}
    doc = api.client.get("/v1/openapi.json").json()
    assert doc["openapi"] == "3.1.0" and doc == document()
    assert doc["paths"]["/v1/releases"]["post"]["x-konorkestra-role"] == "operator"
    steer = doc["paths"]["/v1/rollouts/{group}/{command}"]["post"]
    assert "rollout_conflict" in steer["responses"]["409"]["description"]
    [command] = [p for p in steer["parameters"] if p["name"] == "command"]
    assert command["schema"]["enum"] == ["approve", "pause", "resume", "abort", "promote"]


def test_empty_store_lists_are_empty(api: Api) -> None:
    assert api.get("/v1/commits").json() == {"commits": []}
    assert api.get("/v1/groups").json() == {"groups": []}
    assert api.get("/v1/releases").json() == {"releases": []}
