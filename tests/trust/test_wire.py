"""Strict decoding: canonical JSON, base64 and times."""

from __future__ import annotations

import datetime as dt

import pytest

from konorkestra.trust.errors import MalformedBundle, TooLarge
from konorkestra.trust.wire import b64decode_strict, format_time, parse_canonical, parse_time


def test_canonical_json_round_trips() -> None:
    assert parse_canonical(b'{"a":[1,"x"],"b":null}', "doc", limit=100) == {
        "a": [1, "x"],
        "b": None,
    }


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"a":1,"a":1}', "duplicate JSON key 'a'"),
        (b'{"a":1}{}', "not valid JSON"),
        (b'{"a":1} ', "not in canonical JSON form"),
        (b'{"b":1,"a":2}', "not in canonical JSON form"),
        (b'{"a":1.0}', "not in canonical JSON form"),
        (b'{"a":NaN}', "not valid JSON"),
        (b'{"a":"\xff"}', "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_non_canonical_json_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedBundle, match=reason):
        parse_canonical(data, "doc", limit=1 << 20)


def test_size_is_checked_before_parsing() -> None:
    with pytest.raises(TooLarge, match="doc is 11 bytes, over the 10-byte cap"):
        parse_canonical(b"not json!!!", "doc", limit=10)


@pytest.mark.parametrize("text", ["YQ=", "YQ", "Y Q==", "YR==", "YQ==\n", "-_==", 7])
def test_base64_must_be_standard_and_canonical(text: object) -> None:
    with pytest.raises(MalformedBundle):
        b64decode_strict(text, "sig")


def test_base64_accepts_canonical_text() -> None:
    assert b64decode_strict("YQ==", "sig") == b"a"
    assert b64decode_strict("", "sig") == b""


def test_times_are_whole_utc_seconds() -> None:
    when = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert format_time(when) == "2025-01-02T03:04:05Z"
    assert parse_time("2025-01-02T03:04:05Z", "t") == when
    for bad in ["2025-01-02T03:04:05+00:00", "2025-01-02T03:04:05.1Z", "2025-13-02T03:04:05Z"]:
        with pytest.raises(MalformedBundle):
            parse_time(bad, "t")
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(dt.datetime(2025, 1, 1))
