"""Agent routes touch only the calling node's Groups (issue 12, finding 1).

The rules are those of :mod:`konorkestra.center.agentapi.scope` (S1–S3), tested
first without a store, then through every agent route of the real app over a
real SQLite store, with real node certificates issued by the Center's CA (the
ASGI TLS extension is filled the way ``TLSExtH11Protocol`` fills it).
"""

from __future__ import annotations

import datetime as dt
import doctest
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from konorkestra.center.agentapi import scope as agentscope
from konorkestra.center.agentapi.reports import parse_report
from konorkestra.center.agentapi.scope import mismatches, out_of_scope, report_groups
from konorkestra.center.app.datadir import Opened
from konorkestra.center.app.factory import create_app
from konorkestra.center.app.metrics import CenterMetrics
from konorkestra.center.ingest import build_ingest
from konorkestra.center.nodes.enrollment import EnrollmentRoutes, EnrollmentService
from konorkestra.center.nodes.jointokens import JoinTokenHasher, JoinTokenSpec
from konorkestra.center.pki.ca import CertificateAuthority
from konorkestra.center.pki.identity import ClientIdentityMiddleware
from konorkestra.center.store import schema
from konorkestra.model.types import GroupName
from tests.helpers.configrepo import seeded
from tests.helpers.inproc import make_ctx

TD = "scope.konorkestra"
HEX = "0123456789abcdef"
PROC = {"pid": 42, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app", "start_time": 7}


def rid(group: str, seq: int = 1, hex16: str = HEX) -> str:
    return f"{group}-{seq}-{hex16}"


# --- the rules, without a store ------------------------------------------------------


def test_rules_are_documented_by_a_passing_example() -> None:
    assert doctest.testmod(agentscope).failed == 0


def test_s2_out_of_scope_lists_each_foreign_group_once_in_order() -> None:
    assert out_of_scope({"web"}, []) == []
    assert out_of_scope({"web", "api"}, ["api", "web"]) == []
    assert out_of_scope(("web",), ["zz", "db", "web", "db"]) == ["db", "zz"]


def test_s1_every_field_of_a_report_that_names_a_group_counts() -> None:
    names = {
        "applied": {"applied": [{"group": "g1", "release": rid("g1"), "sequence": 1}]},
        "refused": {"refused": [{"group": "g2", "code": "X", "reason": "r"}]},
        "delivery": {"events": [{"kind": "delivery", "at": 1, "group": "g3", "process": PROC,
                                 "release": rid("g3"), "sequence": 1, "via": "watch"}]},
        "ack": {"events": [{"kind": "ack", "at": 1, "group": "g4", "process": PROC,
                            "release": rid("g4"), "status": "applied"}]},
        "metric": {"events": [{"kind": "report", "at": 1, "group": "g5", "process": PROC,
                               "metric": "m", "value": 1}]},
        "stale": {"stale": {"g6": True}},
    }  # fmt: skip
    for i, (what, body) in enumerate(names.items(), start=1):
        assert report_groups(parse_report(body)) == [f"g{i}"], what
    # A release id names its group even when the item names another one.
    forged = {"refused": [{"group": "web", "release": rid("db", 3), "code": "X", "reason": "r"}]}
    assert report_groups(parse_report(forged)) == ["db", "web"]
    # Errors and "dropped" name no group.
    quiet = {"errors": [{"kind": "sync", "message": "group db is down"}], "dropped": 3}
    assert report_groups(parse_report(quiet)) == []


def test_s3_a_release_named_under_a_group_is_a_release_of_that_group() -> None:
    def problems(item: dict[str, Any], key: str = "applied") -> list[str]:
        return mismatches(parse_report({key: [item]}))

    ok = {"group": "web-a", "release": rid("web-a", 3), "sequence": 3,
          "digest": f"sha256:{HEX}{'0' * 48}"}  # fmt: skip
    assert problems(ok) == []
    assert problems({**ok, "release": rid("web", 3)})  # another group (a prefix of this one)
    assert problems({**ok, "release": "web-a-3-x"})  # not a release id at all
    assert problems({**ok, "release": "web-a-3-5-" + HEX})  # group "web-a-3", not "web-a"
    assert problems({**ok, "sequence": 4})  # another sequence
    assert problems({**ok, "digest": "sha256:" + "f" * 64})  # another statement's digest
    refused = {"group": None, "release": rid("web"), "code": "X", "reason": "r"}
    assert problems(refused, "refused") == ["refused[0]: names release 'web-1-" + HEX
                                            + "' but no group"]  # fmt: skip
    assert problems({"code": "X", "reason": "r"}, "refused") == []  # names no release
    ack = {"kind": "ack", "at": 1, "group": "web", "process": PROC,
           "release": rid("db"), "status": "failed"}  # fmt: skip
    assert problems(ack, "events") == [
        f"events[0]: release '{rid('db')}' is not a release of group 'web'"
    ]


# --- the routes ----------------------------------------------------------------------


class AsNode:
    """Fill the ASGI TLS extension with the certificate of the node named in ``X-Test-Node``."""

    def __init__(self, app: ASGIApp, certs: dict[str, bytes]) -> None:
        self.app, self.certs = app, certs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            name = dict(scope["headers"]).get(b"x-test-node", b"").decode()
            if name:
                tls = {"client_cert_chain": [self.certs[name].decode("ascii")]}
                scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "tls": tls}}
        await self.app(scope, receive, send)


@dataclass
class Env:
    client: TestClient
    opened: Opened
    ids: dict[str, str]
    releases: dict[str, Any]
    svc: EnrollmentService | None = None

    def call(self, node: str, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.client.request(method, path, headers={"X-Test-Node": node}, **kw)

    def report(self, node: str, body: dict[str, Any]) -> httpx.Response:
        return self.call(node, "POST", "/v1/agent/reports", json=body)

    def stored(self) -> tuple[int, int, list[Any]]:
        """Report rows, audit events by nodes, and ``last_seen`` of every node."""
        with self.opened.engine.connect() as conn:
            rows = conn.execute(sa.select(sa.func.count()).select_from(schema.node_reports))
            a = schema.audit
            events = conn.execute(
                sa.select(sa.func.count()).where(a.c.actor.like("node:%"))
            ).scalar()
            seen = conn.execute(sa.select(schema.nodes.c.last_seen)).scalars().all()
        return rows.scalar() or 0, events or 0, sorted(map(str, seen))


def _csr() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def env(opened: Opened, tmp_path: Path) -> Iterator[Env]:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca", trust_domain=TD)
    svc = EnrollmentService(opened.engine, ca=ca, hasher=JoinTokenHasher(b"k" * 32))
    ctx = make_ctx(opened, enrollment=EnrollmentRoutes(svc, ca.cert_pem), agent_api=True)
    assert ctx.releaser is not None
    bare, _work = seeded(tmp_path)
    build_ingest(opened.engine, ctx.releaser, CenterMetrics(), repo=str(bare), branch="main",
                 mirror=opened.data.mirror, watch=False).run_once()  # fmt: skip
    app = create_app(ctx)
    app.add_middleware(ClientIdentityMiddleware, trust_domain=TD, authorizer=svc)
    certs, ids = {}, {}
    for name, groups in (("web-a", ["checkout"]), ("db-a", ["payments"])):
        spec = JoinTokenSpec(groups=tuple(GroupName(g) for g in groups), node_name=name)
        token, _ = svc.create_join_token(spec, created_by="test")
        enrolled = svc.enroll(str(token), _csr(), requested_name=name)
        certs[name], ids[name] = enrolled.certificate.cert_pem, enrolled.node.id
    with opened.engine.connect() as conn:
        rows = conn.execute(sa.select(schema.releases)).all()
    releases = {r.group: r for r in rows}
    assert {"checkout", "payments"} <= set(releases)
    with TestClient(AsNode(app, certs), raise_server_exceptions=False) as client:
        yield Env(client, opened, ids, releases, svc)


def _applied(env: Env, group: str) -> dict[str, Any]:
    r = env.releases[group]
    return {"group": group, "release": r.id, "sequence": r.sequence, "digest": r.digest, "at": 1}


def _refused(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error: dict[str, Any] = resp.json()["error"]
    assert error["code"] == code, error
    return error


def test_a_report_naming_a_foreign_group_anywhere_is_refused_whole(env: Env) -> None:
    own = _applied(env, "checkout")
    foreign = _applied(env, "payments")
    bodies = {
        "applied": {"applied": [own, foreign]},
        "refused": {"applied": [own], "refused": [
            {"group": "payments", "release": foreign["release"], "sequence": foreign["sequence"],
             "code": "BadSignature", "reason": "r"}]},
        "ack": {"applied": [own], "events": [
            {"kind": "ack", "at": 1, "group": "payments", "process": PROC,
             "release": foreign["release"], "status": "failed", "error": "boom"}]},
        "metric": {"applied": [own], "events": [
            {"kind": "report", "at": 1, "group": "payments", "process": PROC,
             "metric": "error_rate", "value": 1.0}]},
        "stale": {"applied": [own], "stale": {"payments": True}},
        "release under an own group": {"applied": [{**own, "release": foreign["release"]}]},
    }  # fmt: skip
    before = env.stored()
    for what, body in bodies.items():
        error = _refused(env.report("web-a", body), 403, "group_out_of_scope")
        assert error["details"]["groups"] == ["payments"], what
        assert "payments" in error["message"], what
        assert env.stored() == before, f"{what}: something was stored or audited"
    # In scope it is stored and audited, as before.
    resp = env.report("web-a", {"applied": [own], "stale": {"checkout": False}})
    assert resp.status_code == 200 and resp.json() == {"stored": 2}, resp.text
    rows, events, seen = env.stored()
    assert (rows, events) == (before[0] + 2, before[1] + 1) and seen != before[2]
    # The other node's scope is its own: the same foreign report is fine from it.
    assert env.report("db-a", {"applied": [foreign]}).status_code == 200


def test_a_report_crediting_a_group_with_another_release_is_refused(env: Env) -> None:
    own = _applied(env, "checkout")
    bad = {
        "malformed id": {**own, "release": "checkout-1-x"},
        "another sequence": {**own, "sequence": own["sequence"] + 1},
        "another digest": {**own, "digest": "sha256:" + "f" * 64},
    }
    before = env.stored()
    for what, item in bad.items():
        error = _refused(env.report("web-a", {"applied": [item]}), 400, "release_mismatch")
        assert "applied[0]" in error["message"], what
        assert env.stored() == before, what
    nameless = {"refused": [{"release": own["release"], "code": "X", "reason": "r"}]}
    _refused(env.report("web-a", nameless), 400, "release_mismatch")
    assert env.stored() == before


def test_desired_refuses_a_have_entry_outside_the_scope(env: Env) -> None:
    resp = env.call("web-a", "GET", "/v1/agent/desired?have=checkout:0,payments:3&wait=0")
    error = _refused(resp, 403, "group_out_of_scope")
    assert error["details"]["groups"] == ["payments"]
    resp = env.call("web-a", "GET", "/v1/agent/desired?have=checkout:0&wait=0")
    assert resp.status_code == 200, resp.text
    assert [r["group"] for r in resp.json()["releases"]] == ["checkout"]
    resp = env.call("web-a", "GET", "/v1/agent/desired?wait=0")  # no have: its own groups
    assert [r["group"] for r in resp.json()["releases"]] == ["checkout"]


def test_blobs_answer_only_for_releases_in_scope(env: Env) -> None:
    def digests(group: str) -> set[str]:
        return {str(c["digest"]) for c in env.releases[group].configsets}

    foreign = sorted(digests("payments") - digests("checkout"))[0]
    own = sorted(digests("checkout"))[0]
    _refused(env.call("web-a", "GET", f"/v1/agent/blobs/{foreign}"), 403, "blob_out_of_scope")
    assert env.call("db-a", "GET", f"/v1/agent/blobs/{foreign}").status_code == 200
    assert env.call("web-a", "GET", f"/v1/agent/blobs/{own}").status_code == 200


def test_renewal_touches_no_group_and_renews_only_the_caller(env: Env) -> None:
    resp = env.call("web-a", "POST", "/v1/nodes/self/renew", json={"csr": _csr().decode()})
    assert resp.status_code == 200, resp.text
    cert = x509.load_pem_x509_certificate(resp.json()["certificate"].encode())
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == env.ids["web-a"]
    assert dt.datetime.now(dt.UTC) < cert.not_valid_after_utc


def test_the_guard_refuses_a_request_without_a_node_or_of_a_revoked_node_at_once(
    env: Env,
) -> None:
    path = "/v1/agent/desired?wait=0"
    assert env.call("web-a", "GET", path).status_code == 200  # now cached as allowed
    _refused(env.client.get(path), 401, "client_certificate_required")
    assert env.svc is not None and env.svc.revoke_node(env.ids["web-a"], by="alice")
    _refused(env.call("web-a", "GET", path), 403, "node_revoked")  # the very next request
    for route in ("/v1/agent/blobs/sha256:" + "0" * 64, "/v1/agent/reports"):
        method = "POST" if route.endswith("reports") else "GET"
        _refused(env.call("web-a", method, route, json={}), 403, "node_revoked")
    assert env.call("db-a", "GET", path).status_code == 200  # another node is untouched
