from __future__ import annotations

import time
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml.composer import Composer
from ruamel.yaml.scanner import RoundTripScanner

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


# --- Limits enforced while scanning (issue 12, finding 7) -------------------


def reference(data: bytes) -> tuple[object, ...]:
    """Outcome with ruamel's own scanner: the depth check on the composed graph alone."""
    with mock.patch.object(yamlsafe, "_SCANNER", RoundTripScanner):
        return outcome(data)


def composed_nodes() -> Any:
    """Count the nodes ruamel's composer starts (a spy; composing still happens)."""
    return mock.patch.object(
        Composer, "compose_node", autospec=True, side_effect=Composer.compose_node
    )


def outcome(data: bytes) -> tuple[object, ...]:
    try:
        docs = load_yaml(data)
    except YamlError as exc:
        return ("error", exc.code)
    return ("ok", [(d.value, d.positions, d.key_positions) for d in docs])


@pytest.mark.parametrize(
    ("bomb", "line", "column"),
    [
        ("x: " + "[" * 20_000 + "]" * 20_000, 1, 68),
        ("x: " + "{a: " * 20_000 + "}" * 20_000, 1, 4 + 4 * 64),
        ("- " * 20_000 + "x", 1, 2 * 65 + 1),
        ("".join(" " * i + "a:\n" for i in range(70)), 66, 67),
    ],
    ids=["flow-seq", "flow-map", "block-seq", "block-map"],
)
def test_deep_nesting_is_refused_by_the_scanner_before_composing(
    bomb: str, line: int, column: int
) -> None:
    with composed_nodes() as composed:
        started = time.monotonic()
        exc = error(bomb)
        elapsed = time.monotonic() - started
    assert composed.call_count <= 2 * yamlsafe.MAX_DEPTH + 4  # keys and values, to the limit
    assert (exc.code, exc.message) == ("yaml-limit", "nested deeper than 64 levels")
    assert (exc.line, exc.column) == (line, column)  # where the 65th level opens
    assert elapsed < 2  # sanity bound only; bench/yaml_bombs.py measures


def test_depth_64_is_accepted_65_refused_across_block_and_flow() -> None:
    def nested(levels: int) -> bytes:
        block = "".join(" " * i + "- \n" for i in range(levels // 2))[:-1]
        flow = levels - levels // 2
        return (block + "[" * flow + "1" + "]" * flow + "\n").encode()

    assert outcome(nested(64)) == reference(nested(64))
    assert outcome(nested(64))[0] == "ok"
    assert outcome(nested(65)) == reference(nested(65)) == ("error", "yaml-limit")


def test_alias_count_is_capped_while_scanning() -> None:
    many = "a: &a x\nb: [" + ", ".join(["*a"] * yamlsafe.MAX_ALIASES) + "]\n"
    assert len(load_yaml(many.encode())[0].value["b"]) == yamlsafe.MAX_ALIASES
    exc = error(many.replace("]", ", *a]"))
    assert (exc.code, exc.line) == ("yaml-limit", 2)
    assert "aliases" in exc.message
    with composed_nodes() as composed:
        assert error("a: &a [x, y, z]\nb: [*a" + ", *a" * 100_000 + "]").code == "yaml-limit"
    assert composed.call_count < yamlsafe.MAX_ALIASES + 10  # stopped at the 1,001st alias


# Benign YAML near the depth limit, written in every style the scanner treats
# differently: brackets inside quotes, plain block scalars, comments and block
# literals must never count as nesting.
_PLAIN = st.sampled_from(["x", "on", "12", "a b", "k8s"])
_QUOTED = st.sampled_from(["'[{'", '"}]# ["', "'a: [b]'", '"{x: 1}"', "'#'"])
_BLOCK_ONLY = st.sampled_from(["x[1]{2}", "a]b", "c}d#e"])


@st.composite
def _flow(draw: st.DrawFn, depth: int) -> str:
    if depth == 0:
        return draw(st.one_of(_PLAIN, _QUOTED))
    inner = draw(_flow(depth - 1))
    siblings = draw(st.lists(st.one_of(_PLAIN, _QUOTED), max_size=2))
    items = [*siblings, inner] if draw(st.booleans()) else [inner, *siblings]
    if draw(st.booleans()):
        return "[" + ", ".join(items) + "]"
    return "{" + ", ".join(f"k{i}: {v}" for i, v in enumerate(items)) + "}"


@st.composite
def _block(draw: st.DrawFn, depth: int, indent: int) -> str:
    pad = " " * indent
    comment = draw(st.sampled_from(["", "  # [[{ not nesting", " #]"]))
    if depth == 0:
        if draw(st.booleans()):
            return f"{pad}k: |{comment}\n{pad}  [[[ {{{{ text\n{pad}  ]]\n"
        return f"{pad}k: {draw(st.one_of(_PLAIN, _QUOTED, _BLOCK_ONLY))}{comment}\n"
    if draw(st.integers(0, 7)) == 0:  # the rest of the way down in flow style
        return f"{pad}k: {draw(_flow(depth - 1))}{comment}\n"
    inner = draw(_block(depth - 1, indent + 2))
    sibling = f"{pad}s: {draw(st.one_of(_PLAIN, _QUOTED, _BLOCK_ONLY))}{comment}\n"
    if draw(st.booleans()):
        return f"{sibling}{pad}m:{comment}\n{inner}"
    return f"{pad}-{comment}\n{inner}"


@settings(max_examples=150, deadline=None)
@given(depth=st.integers(55, 72), data=st.data())
def test_scanner_limits_agree_with_the_composed_graph_check(
    depth: int, data: st.DataObject
) -> None:
    text = data.draw(_block(depth, 0))
    assert outcome(text.encode()) == reference(text.encode())
