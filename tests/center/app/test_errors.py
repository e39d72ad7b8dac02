"""Every error is JSON of one stable shape; malformed input is a 400, never a traceback."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

from konorkestra.center.app.datadir import Opened
from konorkestra.center.app.factory import create_app
from tests.helpers.errors import assert_error
from tests.helpers.inproc import Api, make_ctx


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b"\xff\xfe", b"", b'{"group": "a",}', b"null"],
)
def test_malformed_json_bodies_are_400(api: Api, body: bytes) -> None:
    resp = api.post("/v1/releases", content=body, headers={"Content-Type": "application/json"})
    assert_error(resp, 400, "bad_request")


def test_malformed_json_on_the_hook_and_token_routes_is_400(api: Api) -> None:
    assert_error(api.post("/v1/hooks/git", content=b"{oops"), 400, "bad_request")
    assert_error(api.post("/v1/tokens", "admin", content=b"{oops"), 400, "bad_request")


def test_invalid_fields_are_422_naming_the_field(api: Api) -> None:
    err = assert_error(
        api.post("/v1/releases", json={"group": "g", "configsets": "x@1"}), 422, "invalid"
    )
    assert "configsets" in str(err["message"])
    err = assert_error(
        api.post("/v1/releases", json={"group": "g", "configsets": ["x@y"]}), 422, "invalid"
    )
    err = assert_error(
        api.post("/v1/releases", json={"group": "g", "configsets": ["x@1"], "colour": 1}),
        422,
        "invalid",
    )
    assert "colour" in str(err["message"])
    err = assert_error(
        api.post("/v1/tokens", "admin", json={"name": "n", "role": "god"}), 422, "invalid"
    )


def test_release_before_any_accepted_commit_is_409(api: Api) -> None:
    assert_error(
        api.post("/v1/releases", json={"group": "g", "configsets": ["x@1"]}), 409, "conflict"
    )


def test_unknown_paths_are_404_and_wrong_methods_405(api: Api) -> None:
    assert_error(api.get("/v1/nothing-here"), 404, "not_found")
    assert_error(api.get("/v1/releases/no-such-release"), 404, "not_found")
    assert_error(api.get("/v1/commits/abcdef12"), 404, "not_found")
    assert_error(
        api.client.put("/v1/releases", headers=api.headers("admin")), 405, "method_not_allowed"
    )
    assert_error(
        api.client.delete("/v1/commits", headers=api.headers("admin")), 405, "method_not_allowed"
    )


def test_bad_path_and_query_parameters_are_400(api: Api) -> None:
    assert_error(api.get("/v1/commits/not-hex"), 400, "bad_request")
    assert_error(api.get("/v1/blobs/md5:abc"), 400, "bad_request")
    assert_error(api.get("/v1/commits?limit=lots"), 400, "bad_request")
    assert_error(api.get("/v1/blobs/sha256:" + "0" * 64), 404, "not_found")


def test_an_unexpected_exception_is_a_500_without_details(opened: Opened) -> None:
    async def boom(_request: Request) -> None:
        raise RuntimeError("secret internals /etc/passwd")

    app = create_app(make_ctx(opened))
    app.router.routes.append(Route("/v1/boom", boom))
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/v1/boom")
    err = assert_error(resp, 500, "internal")
    assert "secret" not in resp.text and err["details"] == {}
