"""``GET /v1/audit?order=desc&before=SEQ``: the newest events first, paged backward.

The default stays oldest first (``asc``, paged with ``after``) for existing
clients; every bad parameter is a 400 ``invalid`` that names it. Runs on SQLite
and on a throwaway PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from konorkestra.center.store.audit import append
from tests.helpers.errors import assert_error
from tests.helpers.inproc import Api

pytestmark = pytest.mark.postgresql


def _seqs(api: Api, **params: Any) -> tuple[list[int], int | None]:
    resp = api.get("/v1/audit", params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return [e["seq"] for e in body["events"]], body["next"]


@pytest.fixture
def head(api: Api) -> int:
    """Twelve more events; the log's newest seq."""
    with api.opened.engine.begin() as conn:
        for i in range(12):
            last = append(conn, "test", "test.event", {"i": i})
    return last


def test_desc_lists_the_newest_first_and_limit_keeps_the_newest(api: Api, head: int) -> None:
    newest, nxt = _seqs(api, order="desc", limit=5)
    assert newest == list(range(head, head - 5, -1))
    assert nxt == head - 4
    # The old default is unchanged: oldest first, and limit keeps the oldest.
    oldest, _ = _seqs(api, limit=5)
    assert oldest == [1, 2, 3, 4, 5]


def test_before_pages_backward_to_the_first_event_without_gaps(api: Api, head: int) -> None:
    seen: list[int] = []
    cursor: int | None = None
    while True:
        params: dict[str, Any] = {"order": "desc", "limit": 5}
        if cursor is not None:
            params["before"] = cursor
        page, cursor = _seqs(api, **params)
        seen += page
        if cursor is None:
            break
    assert seen == list(range(head, 0, -1))


def test_after_and_before_bound_either_order(api: Api, head: int) -> None:
    assert _seqs(api, after=3, before=7)[0] == [4, 5, 6]
    assert _seqs(api, after=3, before=7, order="desc")[0] == [6, 5, 4]
    assert _seqs(api, after=3, limit=2)[0] == [4, 5]
    assert _seqs(api, before=2, order="desc") == ([1], None)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"order": "newest"}, "order"),
        ({"order": "DESC"}, "order"),
        ({"before": "0"}, "before"),
        ({"before": "x"}, "before"),
        ({"after": "-1"}, "after"),
        ({"limit": "0"}, "limit"),
        ({"limit": "5001"}, "limit"),
    ],
)
def test_a_bad_parameter_is_a_400_invalid_naming_it(
    api: Api, params: dict[str, str], parameter: str
) -> None:
    error = assert_error(api.get("/v1/audit", params=params), 400, "invalid")
    assert error["details"] == {"parameter": parameter}
    assert repr(parameter) in str(error["message"])
