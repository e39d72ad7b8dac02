"""The UDS protocol vocabulary: strict request parsing, field checks, ack eligibility."""

from __future__ import annotations

import doctest

import pytest

import konorkestra.agent.udswire as udswire
from konorkestra.agent.udswire import (
    ProtocolError,
    encode,
    is_release_of,
    need_int,
    need_str,
    parse_request,
    request_id,
)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(udswire)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize(
    "line", [b'{"op":"get","op":"get"}', b"[1]", b'{"value": NaN}', b"{" * 200 + b"}" * 200]
)
def test_requests_are_strict_json_objects(line: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request(line)
    assert info.value.code == "bad_request"


def test_field_checks_name_the_field() -> None:
    with pytest.raises(ProtocolError, match="`id` must be a string or an integer"):
        request_id({"id": True})
    with pytest.raises(ProtocolError, match="`group` must be a non-empty string"):
        need_str({"group": ""}, "group")
    with pytest.raises(ProtocolError, match="`after` must be an integer"):
        need_int({"after": False}, "after")
    assert need_int({}, "after", default=0) == 0


def test_an_ack_may_name_current_served_or_an_older_release_of_the_group() -> None:
    def rid(group: str, seq: int) -> str:
        return f"{group}-{seq}-{'ab' * 8}"

    current = rid("g", 5)
    assert is_release_of("g", current, current, 5, served=())
    assert is_release_of("g", "x", current, 5, served={"x"})
    assert is_release_of("g", rid("g", 4), current, 5, served=())
    assert not is_release_of("g", rid("g", 6), current, 5, served=())
    assert not is_release_of("g", rid("h", 4), current, 5, served=())
    assert not is_release_of("g", "g-4", current, 5, served=())


def test_encode_is_compact_and_refuses_nan() -> None:
    assert encode({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    with pytest.raises(ValueError):
        encode(float("nan"))
