"""Hostile and random request bodies against every Center route that takes one
(issue 12, findings 2-4): never a 500, always the stable error shape, strict
JSON refused by name, and big uploads cut off while streaming.

The routes come from the source: every ``Route("/…", …, methods=[…])`` under
``konorkestra/center`` with POST, PUT, PATCH or DELETE, so a route added later
is attacked without editing this file. Each is tried without credentials, with
the admin token and with a node certificate (the real Center and node of
``conftest.py``).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.adversarial.conftest import Node, source
from tests.helpers.center_proc import CenterProcess
from tests.helpers.upload import PeakRss, client, upload

CENTER_SRC = Path(__file__).resolve().parents[2] / "konorkestra" / "center"
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
MIB = 1 << 20


def body_routes() -> list[tuple[str, str]]:
    """(method, path) of every Center route that may carry a body, from the source."""
    found: set[tuple[str, str]] = set()
    for module in CENTER_SRC.rglob("*.py"):
        for call in ast.walk(ast.parse(module.read_text())):
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", "") == "Route"):
                continue
            if not (call.args and isinstance(call.args[0], ast.Constant)):
                continue
            for kw in call.keywords:
                if kw.arg == "methods" and isinstance(kw.value, ast.List):
                    for m in kw.value.elts:
                        if isinstance(m, ast.Constant) and m.value in BODY_METHODS:
                            found.add((m.value, str(call.args[0].value)))
    return sorted(found)


ROUTES = body_routes()
# Who gets past authentication to the body, per route that reads one.
READERS = {
    ("POST", "/v1/tokens"): "admin",
    ("POST", "/v1/releases"): "admin",
    ("POST", "/v1/join-tokens"): "admin",
    ("POST", "/v1/hooks/git"): "admin",
    ("POST", "/v1/enroll"): "anonymous",
    ("POST", "/v1/agent/reports"): "node",
    ("POST", "/v1/nodes/self/renew"): "node",
}
WHO = ("anonymous", "admin", "node")


def test_the_route_table_is_found() -> None:
    assert set(READERS) <= set(ROUTES), ROUTES
    assert ("DELETE", "/v1/tokens/{id}") in ROUTES


def concrete(path: str) -> str:
    return path.replace("{digest}", "sha256:" + "0" * 64).replace("{", "").replace("}", "")


class Caller:
    """Sends one body as a given caller; checks what every answer must satisfy."""

    def __init__(self, center: CenterProcess, node: Node) -> None:
        self.center = center
        self.clients = {
            "anonymous": httpx.Client(base_url=center.url, verify=center.verify, timeout=30),
            "admin": httpx.Client(
                base_url=center.url,
                verify=center.verify,
                timeout=30,
                headers={"Authorization": f"Bearer {center.admin_token}"},
            ),
            "node": node.client(),
        }

    def send(self, who: str, method: str, path: str, body: bytes) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if path == "/v1/enroll":  # a fresh source: no shared rate-limit bucket
            with client(self.center.verify, source()) as http:
                resp = http.request(method, self.center.url + path, content=body, headers=headers)
        else:
            resp = self.clients[who].request(method, concrete(path), content=body, headers=headers)
        assert resp.status_code < 500, (who, method, path, body[:200], resp.text[:500])
        if resp.status_code >= 400:
            error = resp.json()["error"]
            assert isinstance(error["code"], str) and isinstance(error["message"], str)
            assert isinstance(error["details"], dict)
        return resp

    def close(self) -> None:
        for http in self.clients.values():
            http.close()


@pytest.fixture(scope="module")
def caller(center: CenterProcess, node: Node) -> Iterator[Caller]:
    c = Caller(center, node)
    yield c
    c.close()


HOSTILE: dict[str, tuple[bytes, str]] = {
    "deep-array": (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
    "deep-object": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "too_deep"),
    "5000-digit int": (b'{"token": ' + b"9" * 5000 + b"}", "number_too_long"),
    "5000-digit float": (b'{"n": 1.' + b"5" * 5000 + b"}", "number_too_long"),
    "duplicate keys": (b'{"role": "viewer", "name": "a", "role": "admin"}', "duplicate_key"),
    "NaN": (b'{"at": NaN}', "non_finite"),
    "Infinity": (b'{"at": -Infinity}', "non_finite"),
    "1e999": (b'{"at": 1e999}', "non_finite"),
    "not UTF-8": (b'{"name": "\xff\xfe"}', "not_utf8"),
    "lone surrogate": (b'{"name": "\\udc00"}', "lone_surrogate"),
    "empty": (b"", "empty"),
    "array": (b"[]", "not_object"),
    "string": (b'"x"', "not_object"),
    "null": (b"null", "not_object"),
    "truncated": (b'{"name": "a', "syntax"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize(("method", "path"), sorted(READERS))
def test_a_hostile_body_is_refused_by_name(
    caller: Caller, case: str, method: str, path: str
) -> None:
    body, problem = HOSTILE[case]
    resp = caller.send(READERS[(method, path)], method, path, body)
    if path == "/v1/hooks/git" and problem == "empty":
        assert resp.status_code == 202  # the hook's body is optional
        return
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "bad_request" and error["details"]["problem"] == problem, error


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_no_caller_on_no_route_gets_a_500(caller: Caller, case: str) -> None:
    for method, path in ROUTES:
        for who in WHO:
            caller.send(who, method, path, HOSTILE[case][0])


def test_a_huge_string_under_the_limit_is_no_problem(caller: Caller) -> None:
    body = json.dumps({"name": "x" * (MIB - 100), "role": "viewer"}).encode()
    for (method, path), who in READERS.items():
        resp = caller.send(who, method, path, body)
        assert resp.status_code != 413 and "problem" not in resp.text, resp.text[:300]
    assert caller.send("admin", "POST", "/v1/tokens", body).status_code == 422  # parsed; too long


BIG = 10**30
VALID_BUT_HUGE = [
    ("admin", "/v1/join-tokens", {"groups": ["checkout"], "ttl_seconds": BIG}),  # was a 500
    ("admin", "/v1/join-tokens", {"groups": ["checkout"], "ttl_seconds": -BIG}),
    ("node", "/v1/agent/reports", {"dropped": BIG}),
    ("node", "/v1/agent/reports", {"errors": [{"kind": "sync", "message": "m", "at": BIG}]}),
    ("admin", "/v1/releases", {"group": "checkout", "configsets": ["x@1"], "reason": "r" * 9999}),
]


@pytest.mark.parametrize(("who", "path", "value"), VALID_BUT_HUGE)
def test_well_formed_bodies_with_huge_values_are_no_500(
    caller: Caller, who: str, path: str, value: Any
) -> None:
    caller.send(who, "POST", path, json.dumps(value).encode())


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=25,
)
_fields = st.sampled_from(
    ["name", "role", "groups", "labels", "token", "csr", "group", "applied", "events",
     "configsets", "strategy", "reason", "process", "kind", "at", "release",
     "refused", "stale", "errors", "dropped", "ttl_seconds", "node_name", "sequence"]
)  # fmt: skip
_objects = st.dictionaries(_fields, _json, max_size=6)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.sampled_from(ROUTES),
    who=st.sampled_from(WHO),
    value=_objects | _json,
    garble=st.sampled_from(["", "dup", "cut"]),
)
def test_random_json_never_gets_a_500(
    caller: Caller, route: tuple[str, str], who: str, value: Any, garble: str
) -> None:
    body = json.dumps(value).encode()
    if garble == "dup" and isinstance(value, dict) and value:
        key = json.dumps(next(iter(value)))
        body = body[:-1] + f", {key}: 1}}".encode()
    elif garble == "cut":
        body = body[: len(body) // 2]
    caller.send(who, *route, body)


@pytest.mark.parametrize(("method", "path"), sorted(READERS))
def test_a_declared_length_over_the_limit_is_413(
    caller: Caller, center: CenterProcess, method: str, path: str
) -> None:
    who = READERS[(method, path)]
    big = b'{"name": "' + b"a" * (MIB + 10) + b'"}'
    resp = caller.send(who, method, path, big)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "too_large"


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
def test_a_300_mb_upload_is_cut_off_without_growing_the_center(
    center: CenterProcess, declare_length: bool
) -> None:
    assert center.proc is not None
    url = f"{center.url}/v1/enroll"
    with client(center.verify, source()) as http:  # warm up the route and the TLS path
        http.post(url, content=b"{}")
    with PeakRss(center.proc.pid) as rss:
        result = upload(
            url,
            total=300 * MIB,
            declare_length=declare_length,
            verify=center.verify,
            source=source(),
        )
    assert rss.growth < 10 * MIB, f"peak RSS grew by {rss.growth / MIB:.1f} MiB"
    assert result.sent < 64 * MIB, f"the Center took {result.sent / MIB:.0f} MiB before closing"
    assert result.status in (413, None), result
    assert center.request("GET", "/readyz").status_code == 200


def test_an_unauthenticated_upload_to_an_admin_route_is_not_drained(
    center: CenterProcess,
) -> None:
    result = upload(
        f"{center.url}/v1/tokens", total=300 * MIB, declare_length=False, verify=center.verify
    )
    assert result.sent < 64 * MIB, f"the Center took {result.sent / MIB:.0f} MiB before closing"
    assert result.status in (401, None), result
