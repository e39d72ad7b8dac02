"""Operator routes need a bearer token; roles decide who may write."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from konorkestra.center.store import schema
from tests.helpers.errors import assert_error
from tests.helpers.inproc import Api

READS = ["/v1/commits", "/v1/groups", "/v1/releases", "/v1/audit", "/v1/audit/verify"]
WRITES = [
    ("/v1/releases", {"group": "checkout", "configsets": ["checkout-api@1"]}),
    ("/v1/hooks/git", {}),
]


@pytest.mark.parametrize("path", READS)
def test_no_token_is_401_with_a_bearer_challenge(api: Api, path: str) -> None:
    resp = api.client.get(path)
    assert_error(resp, 401, "unauthenticated")
    assert resp.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nope",
        "Basic YWxpY2U6eA==",
        "Bearer ",
        "Bearer kt_000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_bad_credentials_are_401(api: Api, header: str) -> None:
    assert_error(
        api.client.get("/v1/commits", headers={"Authorization": header}), 401, "unauthenticated"
    )


def test_a_tampered_secret_is_401(api: Api) -> None:
    token = api.tokens["viewer"]
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert_error(
        api.client.get("/v1/commits", headers={"Authorization": f"Bearer {forged}"}),
        401,
        "unauthenticated",
    )


@pytest.mark.parametrize("path", READS)
def test_viewers_can_read(api: Api, path: str) -> None:
    assert api.get(path, "viewer").status_code == 200


@pytest.mark.parametrize(("path", "body"), WRITES)
def test_viewers_get_403_on_writes(api: Api, path: str, body: dict[str, object]) -> None:
    err = assert_error(api.post(path, "viewer", json=body), 403, "forbidden")
    assert err["details"] == {"needed": "operator", "role": "viewer"}


def test_only_admins_manage_tokens(api: Api) -> None:
    assert_error(
        api.post("/v1/tokens", "operator", json={"name": "x", "role": "viewer"}), 403, "forbidden"
    )
    created = api.post("/v1/tokens", "admin", json={"name": "ci", "role": "operator"})
    assert created.status_code == 201
    token = created.json()["token"]
    ok = api.client.get("/v1/commits", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200


def test_a_revoked_token_is_refused_on_the_next_request(api: Api) -> None:
    created = api.post("/v1/tokens", "admin", json={"name": "temp", "role": "viewer"}).json()
    auth = {"Authorization": f"Bearer {created['token']}"}
    assert api.client.get("/v1/commits", headers=auth).status_code == 200
    revoked = api.client.delete(f"/v1/tokens/{created['id']}", headers=api.headers("admin"))
    assert revoked.status_code == 200
    assert_error(api.client.get("/v1/commits", headers=auth), 401, "unauthenticated")


def test_tokens_are_stored_hashed_never_in_clear(api: Api) -> None:
    with api.opened.engine.connect() as conn:
        stored = [r.hash for r in conn.execute(sa.select(schema.api_tokens))]
    for token in api.tokens.values():
        secret = token.split(".", 1)[1]
        assert all(secret not in h for h in stored)
    assert all(h.startswith("sha256:") for h in stored)


def test_token_creation_is_audited_with_who_asked(api: Api) -> None:
    api.post("/v1/tokens", "admin", json={"name": "grafana", "role": "viewer"})
    events = api.get("/v1/audit").json()["events"]
    last = events[-1]
    assert last["action"] == "token.created"
    assert last["details"]["name"] == "grafana" and last["actor"].startswith("token:admin(")
