from __future__ import annotations

import time

import pytest

from konorkestra.repo import yamlsafe
from konorkestra.repo.yamlsafe import YamlError, load_yaml


def error(text: str | bytes) -> YamlError:
    with pytest.raises(YamlError) as info:
        load_yaml(text.encode() if isinstance(text, str) else text)
    return info.value


def test_plain_json_types_and_positions() -> None:
    [doc] = load_yaml(b"a: 1\nb: [x, 2.5, true, null, 0x1F, 1_000]\nc: {d: 'e'}\n")
    assert doc.value == {"a": 1, "b": ["x", 2.5, True, None, 31, 1000], "c": {"d": "e"}}
    assert doc.position(("b", 1)) == (2, 8)
    assert doc.key_position(("c",)) == (3, 1)
    assert doc.position(("c", "d", "missing")) == (3, 8)  # nearest written ancestor


def test_several_documents_each_with_its_own_start_line() -> None:
    docs = load_yaml(b"a: 1\n---\nb: 2\n---\n# comment\nc: 3\n")
    assert [(d.index, d.line, d.value) for d in docs] == [
        (0, 1, {"a": 1}),
        (1, 3, {"b": 2}),
        (2, 6, {"c": 3}),
    ]


def test_billion_laughs_is_an_error_not_a_hang() -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    started = time.monotonic()
    exc = error("\n".join(lines))
    assert exc.code == "yaml-limit" and "alias" in exc.message
    assert time.monotonic() - started < 2


def test_modest_alias_use_is_fine_and_merge_keys_work() -> None:
    [doc] = load_yaml(b"base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\nagain: *b\n")
    assert doc.value["use"] == {"x": 1, "y": 3}
    assert doc.value["again"] == {"x": 1, "y": 2}


@pytest.mark.parametrize(
    ("text", "code", "line"),
    [
        ("a: 1\na: 2\n", "yaml-duplicate-key", 2),
        ("x: !!python/object:os.system ls\n", "yaml-unsupported", 1),
        ("x: !custom 1\n", "yaml-unsupported", 1),
        ("when: 2024-01-01\n", "yaml-unsupported", 1),
        ("x: .inf\n", "yaml-unsupported", 1),
        ("1: one\n", "yaml-unsupported", 1),
        ("x: !!set {a, b}\n", "yaml-unsupported", 1),
        ("x: &a [*a]\n", "yaml-unsupported", 1),
        ('x: "\\ud800"\n', "yaml-unsupported", 1),
        ("a: [1, 2\nb: 3\n", "yaml-syntax", 2),
        ("a: *nowhere\n", "yaml-syntax", 1),
    ],
)
def test_unsafe_or_broken_yaml_is_a_located_error(text: str, code: str, line: int) -> None:
    exc = error(text)
    assert (exc.code, exc.line) == (code, line)


def test_invalid_utf8_names_the_line() -> None:
    exc = error(b"a: 1\nb: \xff\n")
    assert (exc.code, exc.line) == ("yaml-syntax", 2)


def test_depth_limit() -> None:
    assert error("[" * 70 + "]" * 70).code == "yaml-limit"
    assert error("[" * 3000 + "]" * 3000).code == "yaml-limit"  # parser recursion, no crash
    load_yaml(("[" * 30 + "]" * 30).encode())


def test_size_and_document_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert error(b"a: " + b"x" * (yamlsafe.MAX_FILE_BYTES + 1)).code == "yaml-limit"
    monkeypatch.setattr(yamlsafe, "MAX_DOCUMENTS", 3)
    assert len(load_yaml(b"a: 1\n---\na: 2\n---\na: 3\n")) == 3
    exc = error("a: 1\n---\na: 2\n---\na: 3\n---\na: 4\n")
    assert (exc.code, exc.line) == ("yaml-limit", 7)
