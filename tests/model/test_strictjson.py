"""konorkestra.model.strictjson: one test per refusal rule, plus round-trips and linear time."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from konorkestra.model.strictjson import (
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    PROBLEMS,
    JsonRefused,
    nesting_depth,
    parse,
    parse_object,
)


def problem_of(data: bytes) -> str:
    with pytest.raises(JsonRefused) as info:
        parse_object(data)
    assert info.value.problem in PROBLEMS
    assert str(info.value) == info.value.message
    return info.value.problem


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'{"a": "\xff"}', "not_utf8"),
        (b"", "empty"),
        (b" \n\t ", "empty"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "too_deep"),
        (b"[" * 100_000, "too_deep"),  # a RecursionError in json.loads
        (b'{"a": ' + b"{" * 200_000 + b"}", "too_deep"),
        (b'{"a": 1', "syntax"),
        (b'{"a": 1}{}', "syntax"),
        (b'{"n": ' + b"9" * 5000 + b"}", "number_too_long"),  # ValueError in int()
        (b'{"n": -' + b"9" * MAX_NUMBER_CHARS + b"}", "number_too_long"),
        (b'{"n": 0.' + b"1" * 2000 + b"}", "number_too_long"),
        (b'{"n": NaN}', "non_finite"),
        (b'{"n": -Infinity}', "non_finite"),
        (b'{"n": 1e999}', "non_finite"),
        (b'{"role": "viewer", "role": "admin"}', "duplicate_key"),
        (b'{"a": {"x": 1, "x": 1}}', "duplicate_key"),
        (b'[{"k": 1, "k": 2}]', "duplicate_key"),
        (b'{"s": "\\ud800"}', "lone_surrogate"),
        (b'{"\\udc00": 1}', "lone_surrogate"),
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (b"null", "not_object"),
    ],
)
def test_each_rule_refuses_with_its_problem(data: bytes, problem: str) -> None:
    assert problem_of(data) == problem


def test_syntax_errors_carry_line_and_column() -> None:
    with pytest.raises(JsonRefused) as info:
        parse(b'{\n  "a": 1,\n  "b" 2}')
    assert info.value.details() == {"problem": "syntax", "line": 3, "column": 7}


def test_duplicate_key_message_names_the_key() -> None:
    with pytest.raises(JsonRefused, match="'role'"):
        parse(b'{"role": "viewer", "role": "admin"}')


def test_limits_are_inclusive() -> None:
    deepest = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert nesting_depth(deepest) == MAX_DEPTH
    assert parse(deepest) is not None
    longest = b"-" + b"9" * (MAX_NUMBER_CHARS - 1)
    assert parse(longest) == -int(b"9" * (MAX_NUMBER_CHARS - 1))


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"s": "[" * 5000, "t": '\\"[[[', "u": ["{" * 100]}).encode()
    assert nesting_depth(text) == 2
    assert parse_object(text)["s"] == "[" * 5000


def test_valid_surrogate_pairs_pass() -> None:
    assert parse(b'"\\ud83d\\ude00"') == "\U0001f600"


def test_escaped_backslash_before_u_is_not_an_escape() -> None:
    assert parse(b'"\\\\ud800"') == "\\ud800"


@pytest.mark.parametrize(
    "data",
    [
        b'"' + b'\\"' * 500_000,  # unterminated string of escaped quotes
        b'["a",' * 200_000 + b"1" + b"]" * 200_000,
        b"[" + b'"[",' * 250_000 + b"1]",
        b"{" * 500_000,
    ],
)
def test_a_hostile_mebibyte_is_refused_or_parsed_quickly(data: bytes) -> None:
    started = time.perf_counter()
    with contextlib.suppress(JsonRefused):
        parse(data)
    assert time.perf_counter() - started < 2.0  # linear: ~0.1 s on a quiet machine


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_every_ordinary_json_value_round_trips(value: object) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        assert parse(text.encode()) == value
