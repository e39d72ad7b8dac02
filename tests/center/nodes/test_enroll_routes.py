"""Enrollment, join-token and node routes: auth, error shapes, rate limits."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.middleware import Middleware

from konorkestra.center.agentapi.routes import require_group_in_scope
from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.errors import EXCEPTION_HANDLERS
from konorkestra.center.nodes.enrollment import EnrollmentRoutes, EnrollmentService
from konorkestra.center.nodes.jointokens import JOIN_TOKEN_REFUSED, JoinTokenHasher, RateLimiter
from konorkestra.center.nodes.records import NodeRecord
from konorkestra.center.nodes.routes import routes
from konorkestra.center.operators.apitokens import Role, create_api_token
from konorkestra.center.pki.ca import CertificateAuthority
from konorkestra.center.pki.identity import ClientIdentityMiddleware, NodeAuthError
from konorkestra.center.store import open_store, schema
from konorkestra.center.store.engine import sqlite_url
from konorkestra.model.types import GroupName, NodeId

TD = "test.konorkestra"
TRUST_ROOT = b'{"version":1}'


@dataclass
class Client:
    """A synchronous front for httpx's in-process ASGI transport."""

    app: Starlette
    base_url: str = "https://testserver"

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=self.base_url) as c:
                return await c.request(method, path, **kwargs)  # type: ignore[arg-type]

        return asyncio.run(go())

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


@dataclass
class Env:
    client: Client
    svc: EnrollmentService
    ca: CertificateAuthority
    tokens: dict[Role, str]

    def as_(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
def env(tmp_path: Path) -> Env:
    engine = open_store(sqlite_url(str(tmp_path / "center.db")))
    ca = CertificateAuthority.load_or_create(tmp_path / "ca", trust_domain=TD)
    svc = EnrollmentService(engine, ca=ca, hasher=JoinTokenHasher(b"k" * 32))
    limiter = RateLimiter(burst=3, interval=3600)
    enrollment = EnrollmentRoutes(svc, ca.cert_pem, limiter=limiter)
    ctx = CenterContext(engine=engine, trust_root=TRUST_ROOT, enrollment=enrollment)
    app = Starlette(
        routes=routes(ctx),
        middleware=[Middleware(ClientIdentityMiddleware, trust_domain=TD, authorizer=svc)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.ctx = ctx
    tokens = {}
    with engine.begin() as conn:
        for role in Role:
            tokens[role], _ = create_api_token(conn, role=role, name=str(role), created_by="test")
    return Env(Client(app), svc, ca, tokens)


def _csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _create(env: Env, **body: object) -> dict[str, object]:
    resp = env.client.post(
        "/v1/join-tokens", json={"groups": ["checkout"], **body}, headers=env.as_(Role.OPERATOR)
    )
    assert resp.status_code == 201, resp.text
    data: dict[str, object] = resp.json()
    return data


def test_ca_is_public_pem(env: Env) -> None:
    resp = env.client.get("/v1/enroll/ca")
    assert resp.status_code == 200
    assert x509.load_pem_x509_certificate(resp.content) == env.ca.cert


def test_token_create_needs_operator_and_returns_token_and_pin(env: Env) -> None:
    assert env.client.post("/v1/join-tokens", json={"groups": ["a"]}).status_code == 401
    viewer = env.client.post(
        "/v1/join-tokens", json={"groups": ["a"]}, headers=env.as_(Role.VIEWER)
    )
    assert viewer.status_code == 403
    assert set(viewer.json()["error"]) == {"code", "message", "details"}
    body = _create(env, labels={"dc": "fra1"}, ttl_seconds=600, node_name="web-1")
    assert str(body["token"]).startswith(f"{body['id']}.")
    assert body["ca_pin"] == env.ca.pin
    assert body["status"] == "active" and body["node_name"] == "web-1"
    bad = env.client.post("/v1/join-tokens", json={"groups": ["Bad!"]}, headers=env.as_(Role.ADMIN))
    assert bad.status_code == 400


def test_token_list_and_revoke(env: Env) -> None:
    body = _create(env)
    listing = env.client.get("/v1/join-tokens", headers=env.as_(Role.VIEWER)).json()["tokens"]
    assert [t["id"] for t in listing] == [body["id"]]
    assert "token" not in listing[0] and "secret_hmac" not in listing[0]
    path = f"/v1/join-tokens/{body['id']}"
    assert env.client.delete(path, headers=env.as_(Role.VIEWER)).status_code == 403
    assert env.client.delete(path, headers=env.as_(Role.OPERATOR)).status_code == 200
    assert env.client.delete(path, headers=env.as_(Role.OPERATOR)).status_code == 404
    again = env.client.post("/v1/enroll", json={"token": body["token"], "csr": _csr()})
    assert again.status_code == 401


def test_enroll_then_nodes_show_and_revoke(env: Env) -> None:
    token = _create(env)["token"]
    resp = env.client.post("/v1/enroll", json={"token": token, "csr": _csr(), "name": "web-1"})
    assert resp.status_code == 200, resp.text
    reply = resp.json()
    assert reply["trust_root"] == TRUST_ROOT.decode()
    assert reply["scope"] == {"groups": ["checkout"], "labels": {}}
    assert x509.load_pem_x509_certificate(reply["ca"].encode()) == env.ca.cert
    node_id = reply["node_id"]
    nodes = env.client.get("/v1/nodes", headers=env.as_(Role.VIEWER)).json()["nodes"]
    assert [(n["id"], n["name"], n["status"]) for n in nodes] == [(node_id, "web-1", "active")]
    show = env.client.get(f"/v1/nodes/{node_id}", headers=env.as_(Role.VIEWER))
    assert show.json()["cert_not_after"] == reply["not_after"]
    revoke = f"/v1/nodes/{node_id}/revoke"
    assert env.client.post(revoke, headers=env.as_(Role.VIEWER)).status_code == 403
    revoked = env.client.post(revoke, headers=env.as_(Role.OPERATOR))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert not env.svc.node_allowed(NodeId(node_id))
    missing = env.client.get("/v1/nodes/nope", headers=env.as_(Role.VIEWER))
    assert missing.status_code == 404


def test_refused_join_says_only_the_generic_message(env: Env) -> None:
    token = str(_create(env)["token"])
    wrong = token.split(".")[0] + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    resp = env.client.post("/v1/enroll", json={"token": wrong, "csr": _csr()})
    assert resp.status_code == 401
    assert resp.json()["error"] == {
        "code": "join_refused",
        "message": JOIN_TOKEN_REFUSED,
        "details": {},
    }
    bad_csr = env.client.post("/v1/enroll", json={"token": token, "csr": "nope"})
    assert bad_csr.status_code == 400 and bad_csr.json()["error"]["code"] == "csr_rejected"


def test_enroll_is_tls_only(env: Env) -> None:
    plain = Client(env.client.app, base_url="http://testserver")
    resp = plain.post("/v1/enroll", json={"token": "x", "csr": "y"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "tls_required"


def test_enroll_is_rate_limited_per_source(env: Env) -> None:
    for _ in range(3):
        env.client.post("/v1/enroll", json={"token": "aaaaaaaa.bbbb", "csr": _csr()})
    resp = env.client.post("/v1/enroll", json={"token": "aaaaaaaa.bbbb", "csr": _csr()})
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) > 0


def test_renew_without_a_client_certificate_fails_closed(env: Env) -> None:
    resp = env.client.post("/v1/nodes/self/renew", json={"csr": _csr()})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "client_certificate_required"


def test_group_scope_guard() -> None:
    now = dt.datetime.now(dt.UTC)
    node = NodeRecord(
        NodeId("n1"), "web-1", (GroupName("checkout"),), {}, None, None, None, None, now
    )
    require_group_in_scope(node, "checkout")
    with pytest.raises(NodeAuthError) as info:
        require_group_in_scope(node, "payments")
    assert info.value.status == 403


def test_many_tokens_in_one_request_are_each_single_use_and_audited(env: Env) -> None:
    body = _create(env, count=3, labels={"dc": "fra1"})
    tokens = body["tokens"]
    assert isinstance(tokens, list) and body["count"] == 3 and body["ca_pin"] == env.ca.pin
    assert len({t["id"] for t in tokens}) == 3
    assert all(str(t["token"]).startswith(f"{t['id']}.") for t in tokens)
    assert all(t["labels"] == {"dc": "fra1"} and t["status"] == "active" for t in tokens)
    listing = env.client.get("/v1/join-tokens", headers=env.as_(Role.VIEWER)).json()["tokens"]
    assert sorted(t["id"] for t in listing) == sorted(t["id"] for t in tokens)
    second = tokens[1]["token"]
    joined = env.client.post("/v1/enroll", json={"token": second, "csr": _csr()})
    assert joined.status_code == 200, joined.text
    assert env.client.post("/v1/enroll", json={"token": second, "csr": _csr()}).status_code == 401
    with env.svc.engine.connect() as conn:
        created = (
            conn.execute(
                sa.select(schema.audit.c.details).where(
                    schema.audit.c.action == "join_token.created"
                )
            )
            .scalars()
            .all()
        )
    assert sorted(d["token_id"] for d in created) == sorted(t["id"] for t in tokens)


def test_a_bad_count_is_refused_and_makes_nothing(env: Env) -> None:
    for extra in ({"count": 0}, {"count": 10_001}, {"count": "3"}, {"count": True},
                  {"count": 2, "node_name": "web-1"}):  # fmt: skip
        resp = env.client.post(
            "/v1/join-tokens", json={"groups": ["a"], **extra}, headers=env.as_(Role.OPERATOR)
        )
        assert resp.status_code == 400, (extra, resp.text)
    assert env.client.get("/v1/join-tokens", headers=env.as_(Role.VIEWER)).json()["tokens"] == []
