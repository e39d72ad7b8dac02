"""Assertions on the Center's one JSON error shape."""

from __future__ import annotations


def assert_error(resp: object, status: int, code: str) -> dict[str, object]:
    """``resp`` is an error of ``status`` with the stable shape and ``code``; its ``error``."""
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert "Traceback" not in resp.text  # type: ignore[attr-defined]
    return body["error"]  # type: ignore[no-any-return]
