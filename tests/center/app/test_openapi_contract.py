"""``/v1/openapi.json`` is the contract: complete, valid OpenAPI 3.1, and true of real answers.

* The paths and methods of the document are exactly the routes of a full Center
  (:func:`konorkestra.center.app.server.build`: enrollment, agent API, TLS
  self-test), minus the dashboard's, which :data:`EXCLUDED` names with a reason.
* ``openapi-spec-validator`` accepts the document as OpenAPI 3.1.
* Every documented operation is called on a real ``konorkestra center`` process on
  loopback (TLS; agent routes with a node certificate from a real enrollment), the
  state it needs set up first (a second commit, a canary rollout to steer, a
  node to revoke); its success answer must validate against its schema and carry
  its media type, and each request body sent must validate against its schema.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from starlette.routing import Mount, Route

from konorkestra.agent.identity import build_csr, pinned_context
from konorkestra.center.app.openapi import document
from konorkestra.center.app.openapi_ops import (
    EXCLUDED,
    OPERATIONS,
    ROLES,
    Operation,
    error_statuses,
)
from konorkestra.center.app.server import build
from tests.helpers.center_proc import CenterProcess
from tests.helpers.configrepo import BROKEN_GROUP, payments_common, seeded
from tests.helpers.git import WorkRepo
from tests.helpers.poll import wait_for

Key = tuple[str, str]  # (method, path template)

NOT_CALLED: dict[Key, str] = {}
"""Documented operations the live test does not call, with why (none today)."""


def test_every_route_of_a_full_center_is_documented_and_nothing_else(tmp_path: Path) -> None:
    bare, _ = seeded(tmp_path)
    built = build(data=tmp_path / "data", repo=str(bare), branch="main", watch=False)
    served: set[Key] = set()
    excluded_seen: set[str] = set()
    for route in built.app.routes:
        if isinstance(route, Mount) or (isinstance(route, Route) and route.path in EXCLUDED):
            assert route.path in EXCLUDED, f"{route.path} is neither documented nor excluded"
            excluded_seen.add(route.path)
            continue
        assert isinstance(route, Route), route
        served |= {(m.lower(), route.path) for m in route.methods or () if m != "HEAD"}
    documented = {(op.method, op.path) for op in OPERATIONS}
    assert sorted(served - documented) == [], "routes missing from /v1/openapi.json"
    assert sorted(documented - served) == [], "documented paths no route serves"
    assert excluded_seen == set(EXCLUDED), "an exclusion that matches no route: remove it"


def test_the_document_is_valid_openapi_3_1_and_every_operation_is_described() -> None:
    doc = document()
    validate(doc, cls=OpenAPIV31SpecValidator)
    broken = {**doc, "paths": {"/x": {"get": {"responses": {"200": {}}}}}}  # no description
    with pytest.raises(OpenAPIValidationError):  # the validator can fail
        validate(broken, cls=OpenAPIV31SpecValidator)
    assert doc["openapi"] == "3.1.0"
    schemes = doc["components"]["securitySchemes"]
    assert schemes["mutualTLS"]["type"] == "mutualTLS" and schemes["bearer"]["scheme"] == "bearer"
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            where = f"{method.upper()} {path}"
            assert op["summary"] and "security" in op, where
            errors = [s for s in op["responses"] if s.startswith(("4", "5"))]
            assert "500" in errors, where
            for status in errors:
                body = op["responses"][status]["content"]["application/json"]["schema"]
                assert body["$ref"].startswith("#/components/schemas/"), where
            declared = {p["name"] for p in op.get("parameters", ()) if p["in"] == "path"}
            assert declared == {s[1:-1] for s in path.split("/") if s.startswith("{")}, where
    agent = doc["paths"]["/v1/agent/desired"]["get"]
    assert agent["security"] == [{"mutualTLS": []}]
    assert {"have", "wait"} <= {p["name"] for p in agent["parameters"]}
    assert (
        "application/x-ndjson"
        in doc["paths"]["/v1/agent/stream"]["get"]["responses"]["200"]["content"]
    )
    assert doc["paths"]["/v1/enroll"]["post"]["x-konorkestra-credential"] == "join-token"
    steer = doc["paths"]["/v1/rollouts/{group}/{command}"]["post"]
    assert steer["x-konorkestra-role"] == "operator" and {"200", "202", "409"} <= set(
        steer["responses"]
    )
    audit = {p["name"]: p for p in doc["paths"]["/v1/audit"]["get"]["parameters"]}
    assert audit["order"]["schema"] == {"type": "string", "enum": ["asc", "desc"], "default": "asc"}
    assert "before" in audit


# -- the live calls ---------------------------------------------------------------------


def strict(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` whose answer objects refuse keys they do not document: ``allOf`` extensions
    merged into one object, ``additionalProperties: false`` where none is said. The
    document itself stays open (clients ignore new keys); the test holds it complete."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        node = {k: walk(v) for k, v in node.items()}
        if "allOf" in node and all(
            "properties" in part or "$ref" in part for part in node["allOf"]
        ):
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for part in node["allOf"]:
                part = walk(raw[part["$ref"].rsplit("/", 1)[1]]) if "$ref" in part else part
                merged["properties"].update(part["properties"])
                merged["required"] += part.get("required", [])
            node = merged
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node

    raw = doc["components"]["schemas"]
    schemas = {k: walk(v) for k, v in raw.items()}
    return {**doc, "components": {**doc["components"], "schemas": schemas}}


def schema_of(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for ``schema`` whose ``#/components/...`` references resolve in ``doc``."""
    full = {**schema, "components": doc["components"]}
    return Draft202012Validator(full, format_checker=Draft202012Validator.FORMAT_CHECKER)


@dataclass
class Live:
    center: CenterProcess
    work: WorkRepo
    tmp: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("contract")
    bare, work = seeded(tmp)
    with CenterProcess(repo=bare, data=tmp / "data") as center:
        wait_for(lambda: center.get("/v1/rollouts")["rollouts"], timeout=30, what="rollouts")
        yield Live(center, work, tmp)


class Recorder:
    """Sends requests, checks request bodies against the document, keeps the answers."""

    def __init__(self, live: Live) -> None:
        self.live, self.doc, self.strict = live, document(), strict(document())
        self.ops = {(op.method, op.path): op for op in OPERATIONS}
        self.answers: dict[Key, httpx.Response] = {}
        self.streamed: list[str] = []  # what the stream's first line breaks
        self.batch: list[str] = []  # what a batch of join tokens breaks

    def call(
        self, method: str, template: str, path: str, *, send: Callable[..., httpx.Response] | None
        = None, token: str | None = None, **kw: Any
    ) -> httpx.Response:  # fmt: skip
        op = self.ops[(method, template)]
        if "json" in kw and op.body is not None:
            body_schema = {"$ref": f"#/components/schemas/{op.body}"}
            errors = list(schema_of(self.doc, body_schema).iter_errors(kw["json"]))
            assert not errors, f"{method} {template}: the body sent breaks its schema: {errors[0]}"
        if send is not None:
            resp = send(method.upper(), path, **kw)
        elif op.auth == "public" or op.auth == "join-token":
            resp = httpx.request(method.upper(), self.live.center.url + path,
                                 verify=self.live.center.verify, timeout=30, **kw)  # fmt: skip
        else:
            resp = self.live.center.request(method.upper(), path, token, **kw)
        assert resp.status_code == op.status, f"{method} {path}: {resp.status_code} {resp.text}"
        self.answers[(method, template)] = resp
        return resp

    def problems(self, op: Operation, resp: httpx.Response, body: Any = None) -> list[str]:
        """What in the answer ``resp`` (or its decoded ``body``) breaks the document."""
        where = f"{op.method.upper()} {op.path}"
        if not resp.headers["content-type"].startswith(op.media):
            return [f"{where}: content-type {resp.headers['content-type']}, not {op.media}"]
        if op.answer is None:
            return []
        schema = {"$ref": f"#/components/schemas/{op.answer}"}
        value = resp.json() if body is None else body
        errors = schema_of(self.strict, schema).iter_errors(value)
        return [f"{where}: the answer breaks {op.answer}: {e.message} at {e.json_path}"
                for e in errors]  # fmt: skip


def enroll(rec: Recorder, groups: list[str], name: str) -> tuple[str, ssl.SSLContext]:
    """Enroll a node through the API; its id and a TLS context presenting its certificate."""
    token = rec.call("post", "/v1/join-tokens", "/v1/join-tokens", json={"groups": groups})
    key = ec.generate_private_key(ec.SECP256R1())
    body = {"token": token.json()["token"], "csr": build_csr(key).decode(), "name": name}
    enrolled = rec.call("post", "/v1/enroll", "/v1/enroll", json=body).json()
    where = rec.live.tmp / name
    where.mkdir()
    (where / "node.crt").write_text(enrolled["certificate"])
    plain = (serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (where / "node.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, *plain))
    tls = pinned_context(enrolled["ca"].encode())
    tls.load_cert_chain(where / "node.crt", where / "node.key")
    return enrolled["node_id"], tls


def call_every_route(rec: Recorder) -> None:
    """Set up the state each route needs and call it once (the order matters)."""
    live, c = rec.live, rec.call
    # A second commit: payments-eu (canary) gets a second Release, a rollout to steer.
    live.work.write("configsets/payments-common.yaml", payments_common(2, "CHF"))
    live.work.commit("payments-common 2")
    live.work.write("groups/broken.yaml", BROKEN_GROUP)  # rejected: a commit with diagnostics
    sha = live.work.commit("a group with an unknown policy")
    live.work.push()
    for path in ("/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/v1/trust/root",
                 "/v1/enroll/ca", "/v1/tls/self-test"):  # fmt: skip
        c("get", path, path)
    c("post", "/v1/hooks/git", "/v1/hooks/git", params={"wait": 20})
    live.center.wait_commit(sha)
    c("get", "/v1/commits", "/v1/commits", params={"limit": 5})
    assert c("get", "/v1/commits/{sha}", f"/v1/commits/{sha}").json()["diagnostics"]
    c("get", "/v1/groups", "/v1/groups")
    c("get", "/v1/groups/{name}", "/v1/groups/payments")
    releases = c("get", "/v1/releases", "/v1/releases", params={"group": "payments"}).json()
    latest = releases["releases"][0]
    c("get", "/v1/releases/{id}", f"/v1/releases/{latest['id']}")
    c("get", "/v1/releases/{id}/bundle", f"/v1/releases/{latest['id']}/bundle")
    c("get", "/v1/blobs/{digest}", f"/v1/blobs/{latest['configsets'][0]['digest']}")
    manual = {"group": "payments", "configsets": ["payments-common@1"],
              "strategy": "all-at-once", "reason": "contract test rollback"}  # fmt: skip
    c("post", "/v1/releases", "/v1/releases", json=manual)
    c("get", "/v1/rollouts", "/v1/rollouts")

    def canary() -> bool:  # 404 until the runner started the Group's first rollout
        resp = live.center.request("GET", "/v1/rollouts/payments-eu")
        return resp.status_code == 200 and resp.json()["release"]["sequence"] == 2

    wait_for(canary, timeout=30, what="the payments-eu canary")
    c("get", "/v1/rollouts/{group}", "/v1/rollouts/payments-eu")
    c("post", "/v1/rollouts/{group}/{command}", "/v1/rollouts/payments-eu/pause",
      json={"reason": "contract test"})  # fmt: skip
    c("get", "/v1/audit", "/v1/audit", params={"limit": 50})
    c("get", "/v1/audit/verify", "/v1/audit/verify")
    c("get", "/v1/audit/checkpoint", "/v1/audit/checkpoint")
    c("get", "/v1/tokens", "/v1/tokens")
    token = c("post", "/v1/tokens", "/v1/tokens", json={"name": "contract", "role": "viewer"})
    c("delete", "/v1/tokens/{id}", f"/v1/tokens/{token.json()['id']}")
    node_id, tls = enroll(rec, ["checkout"], "contract-1")
    batch = c("post", "/v1/join-tokens", "/v1/join-tokens",
              json={"groups": ["checkout"], "count": 2}).json()  # fmt: skip
    rec.batch = rec.problems(
        rec.ops[("post", "/v1/join-tokens")], rec.answers[("post", "/v1/join-tokens")]
    )
    c("get", "/v1/join-tokens", "/v1/join-tokens")
    c("delete", "/v1/join-tokens/{token_id}", f"/v1/join-tokens/{batch['tokens'][0]['id']}")
    with httpx.Client(base_url=live.center.url, verify=tls, timeout=30) as http:
        desired = c("get", "/v1/agent/desired", "/v1/agent/desired", send=http.request).json()
        [offer] = desired["releases"]
        with http.stream("GET", "/v1/agent/stream", params={"have": "checkout:0"}) as stream:
            assert stream.status_code == 200, stream.read()
            line = json.loads(next(stream.iter_lines()))
            rec.streamed = rec.problems(rec.ops[("get", "/v1/agent/stream")], stream, line)
            rec.answers[("get", "/v1/agent/stream")] = stream
        digest = next(iter(offer["blobs"])) if offer.get("blobs") else None
        if digest is None:
            release = live.center.get(f"/v1/releases/{offer['id']}")
            digest = release["configsets"][0]["digest"]
        c("get", "/v1/agent/blobs/{digest}", f"/v1/agent/blobs/{digest}", send=http.request)
        applied = {"group": "checkout", "release": offer["id"], "sequence": offer["sequence"],
                   "digest": offer["digest"]}  # fmt: skip
        c("post", "/v1/agent/reports", "/v1/agent/reports", send=http.request,
          json={"applied": [applied], "stale": {"checkout": False}})  # fmt: skip
        c("get", "/v1/tls/self-test", "/v1/tls/self-test", send=http.request)
        new_key = ec.generate_private_key(ec.SECP256R1())
        c("post", "/v1/nodes/self/renew", "/v1/nodes/self/renew", send=http.request,
          json={"csr": build_csr(new_key).decode()})  # fmt: skip
    c("get", "/v1/nodes", "/v1/nodes")
    c("get", "/v1/nodes/{node_id}", f"/v1/nodes/{node_id}")
    doomed, _ = enroll(rec, ["checkout"], "contract-2")
    c("post", "/v1/nodes/{node_id}/revoke", f"/v1/nodes/{doomed}/revoke")


def test_each_documented_route_answers_what_its_schema_says(live: Live) -> None:
    rec = Recorder(live)
    call_every_route(rec)
    assert set(rec.answers) | set(NOT_CALLED) == set(rec.ops), "an operation no test calls"
    problems = rec.streamed + rec.batch
    for key, resp in rec.answers.items():
        if key != ("get", "/v1/agent/stream"):  # checked on its first line above
            problems += rec.problems(rec.ops[key], resp)
    assert not problems, "answers that break /v1/openapi.json:\n" + "\n".join(problems)
    self_test = rec.answers[("get", "/v1/tls/self-test")].json()
    assert self_test["node_id"], "the self-test was last called with a node certificate"


def test_a_wrong_answer_breaks_its_schema() -> None:
    """The live test could not fail if the schemas accepted anything: they do not."""
    doc = document()
    release = {"$ref": "#/components/schemas/Release"}
    good = {
        "id": "p-1-0123456789abcdef",
        "group": "p",
        "sequence": 1,
        "digest": "sha256:" + "a" * 64,
        "state": None,
        "commit": None,
        "configsets": [],
        "policy": {"name": "all-at-once", "digest": "sha256:" + "b" * 64, "strategy": None},
        "previous_id": None,
        "reason": None,
        "created_by": None,
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-02-01T00:00:00Z",
    }
    assert schema_of(doc, release).is_valid(good)
    for broken in ({k: v for k, v in good.items() if k != "sequence"}, {**good, "sequence": "1"},
                   {**good, "created_at": "yesterday"}, {**good, "digest": "md5:00"}):  # fmt: skip
        assert not schema_of(doc, release).is_valid(broken), broken


_ABSENT = {"sha": "ffffffff", "digest": "sha256:" + "f" * 64, "command": "pause"}


def error_probes(op: Operation, admin: str, viewer: str) -> list[tuple[str, dict[str, Any]]]:
    """Requests ``op`` must refuse, as (why, httpx keyword arguments): no credential, a role
    too low, an absent resource, a query parameter out of range, a body that is not JSON."""
    path = "/".join(_ABSENT.get(s[1:-1], "absent") if s.startswith("{") else s
                    for s in op.path.split("/"))  # fmt: skip
    out: list[tuple[str, dict[str, Any]]] = []
    if op.auth in ROLES or op.auth == "node":
        out.append(("no credential", {"url": path}))
    if op.auth in ("operator", "admin"):
        out.append(("role too low", {"url": path, "token": viewer}))
    if op.auth not in ROLES:
        return out  # below: needs a token to get past authentication
    if 404 in error_statuses(op) and "{" in op.path:
        out.append(("absent", {"url": path, "token": admin}))
    bounded = [q for q in op.query if "maximum" in q.schema]
    if bounded:
        too_big = {bounded[0].name: bounded[0].schema["maximum"] + 1}
        out.append(("out of range", {"url": path, "token": admin, "params": too_big}))
    if op.body is not None:
        out.append(("not JSON", {"url": path, "token": admin, "content": b"{"}))
    return out


def test_each_refusal_is_a_documented_status_with_the_error_shape(live: Live) -> None:
    doc, center = document(), live.center
    viewer = center.request("POST", "/v1/tokens", json={"name": "v", "role": "viewer"})
    error = schema_of(doc, {"$ref": "#/components/schemas/Error"})
    problems, probed = [], 0
    for op in OPERATIONS:
        for why, kw in error_probes(op, center.admin_token, viewer.json()["token"]):
            token, url = kw.pop("token", None), center.url + kw.pop("url")
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            resp = httpx.request(op.method.upper(), url, headers=headers, verify=center.verify,
                                 timeout=30, **kw)  # fmt: skip
            where = f"{op.method.upper()} {op.path} ({why})"
            probed += 1
            if not 400 <= resp.status_code < 500:
                problems.append(f"{where}: answered {resp.status_code}, not a refusal")
            elif str(resp.status_code) not in doc["paths"][op.path][op.method]["responses"]:
                problems.append(f"{where}: {resp.status_code} is not documented")
            elif not error.is_valid(resp.json()):
                problems.append(f"{where}: the body is not the Error shape: {resp.text}")
    assert probed > 60 and not problems, "\n".join(problems)
