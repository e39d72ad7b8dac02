from __future__ import annotations

import pytest

from konorkestra.model.canonical import CanonicalError, canonical_bytes, digest_of, is_digest


def test_keys_sorted_and_no_whitespace() -> None:
    assert canonical_bytes({"b": [1, 2.0], "a": {"y": True, "x": None}}) == (
        b'{"a":{"x":null,"y":true},"b":[1,2]}'
    )


def test_rfc8785_numbers_and_strings() -> None:
    assert canonical_bytes([1e21, 0.1, -0.0, "\u00e9\n"]) == b'[1e+21,0.1,0,"\xc3\xa9\\n"]'


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 2**60, {1: "x"}])
def test_unrepresentable_values_are_errors(bad: object) -> None:
    with pytest.raises(CanonicalError):
        canonical_bytes(bad)


def test_digest_format() -> None:
    d = digest_of(b"abc")
    assert is_digest(d)
    assert d == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert not is_digest("sha256:ABC")
