from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from konorkestra.repo import yamlsafe
from konorkestra.repo.yamlevents import Scan
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


# --- Limits enforced on the event stream, before composing (issue 12, finding 7) ---


def reference(data: bytes) -> tuple[object, ...]:
    """Outcome without the event pass: the checks on the composed graph alone."""
    with mock.patch.object(yamlsafe, "scan_events", return_value=Scan(0, None)):
        return outcome(data)


def pure(data: bytes) -> tuple[object, ...]:
    """Outcome with ruamel's pure-Python parser and composer instead of libyaml."""
    with mock.patch.object(yamlsafe, "_use_pure", return_value=True):
        return outcome(data)


@contextmanager
def counted() -> Iterator[dict[str, int]]:
    """Count the events the first pass pulls and the documents composed afterwards."""
    counts = {"events": 0, "documents": 0}
    parse, compose_all = YAML.parse, YAML.compose_all

    def counting(key: str, items: Iterator[Any]) -> Iterator[Any]:
        for item in items:
            counts[key] += 1
            yield item

    with (
        mock.patch.object(YAML, "parse", lambda y, t: counting("events", parse(y, t))),
        mock.patch.object(
            YAML, "compose_all", lambda y, t: counting("documents", compose_all(y, t))
        ),
    ):
        yield counts


def outcome(data: bytes) -> tuple[object, ...]:
    try:
        docs = load_yaml(data)
    except YamlError as exc:
        return ("error", exc.code)
    return ("ok", [(d.value, d.positions, d.key_positions) for d in docs])


@pytest.mark.parametrize(
    ("bomb", "line", "column"),
    [
        ("x: " + "[" * 20_000 + "]" * 20_000, 1, 68),  # the 65th [
        ("x: " + "{a: " * 20_000 + "}" * 20_000, 1, 4 + 4 * 64),  # the 65th {
        ("- " * 20_000 + "x", 1, 2 * 65 + 1),  # the 66th -
        ("".join(" " * i + "a:\n" for i in range(70)), 66, 66),  # the 65th map
    ],
    ids=["flow-seq", "flow-map", "block-seq", "block-map"],
)
def test_deep_nesting_is_refused_from_the_events_before_composing(
    bomb: str, line: int, column: int
) -> None:
    with counted() as counts:
        started = time.monotonic()
        exc = error(bomb)
        elapsed = time.monotonic() - started
    assert counts == {"events": counts["events"], "documents": 0}  # nothing composed
    assert counts["events"] <= 2 * yamlsafe.MAX_DEPTH + 8  # keys and values, to the limit
    assert (exc.code, exc.message) == ("yaml-limit", "nested deeper than 64 levels")
    assert (exc.line, exc.column) == (line, column)  # the first collection at depth 65
    assert elapsed < 2  # sanity bound only; bench/yaml_bombs.py measures


def test_depth_64_is_accepted_65_refused_across_block_and_flow() -> None:
    def nested(levels: int) -> bytes:
        block = "".join(" " * i + "- \n" for i in range(levels // 2))[:-1]
        flow = levels - levels // 2
        return (block + "[" * flow + "1" + "]" * flow + "\n").encode()

    assert outcome(nested(64)) == reference(nested(64)) == pure(nested(64))
    assert outcome(nested(64))[0] == "ok"
    assert outcome(nested(65)) == reference(nested(65)) == ("error", "yaml-limit")


def test_alias_count_is_capped_on_the_events() -> None:
    many = "a: &a x\nb: [" + ", ".join(["*a"] * yamlsafe.MAX_ALIASES) + "]\n"
    assert len(load_yaml(many.encode())[0].value["b"]) == yamlsafe.MAX_ALIASES
    exc = error(many.replace("]", ", *a]"))
    assert (exc.code, exc.line) == ("yaml-limit", 2)
    assert "aliases" in exc.message
    with counted() as counts:
        assert error("a: &a [x, y, z]\nb: [*a" + ", *a" * 100_000 + "]").code == "yaml-limit"
    assert counts["documents"] == 0
    assert counts["events"] < yamlsafe.MAX_ALIASES + 20  # stopped at the 1,001st alias


def test_node_count_is_capped_on_the_events_where_it_is_passed() -> None:
    flow = b"x: [" + b",".join([b"1"] * 300_000) + b"]\n"
    with counted() as counts:
        started = time.monotonic()
        exc = error(flow)
        elapsed = time.monotonic() - started
    assert (exc.code, exc.message) == ("yaml-limit", "more than 250000 nodes in one file")
    assert (exc.line, exc.column) == (1, 5 + 2 * (yamlsafe.MAX_NODES - 3))  # the 250,001st node
    assert counts["documents"] == 0
    assert elapsed < 5  # sanity bound only; bench/yaml_parse.py measures
    # Counted across documents: each document alone is fine.
    half = b"- 1\n" * (yamlsafe.MAX_NODES // 2)
    assert len(load_yaml(half)[0].value) == yamlsafe.MAX_NODES // 2
    assert error(half + b"---\n" + half + b"- 1\n- 1\n").code == "yaml-limit"


def test_an_error_in_an_earlier_document_is_reported_first() -> None:
    exc = error("a: !custom 1\n---\nb: " + "[" * 100 + "]" * 100 + "\n")
    assert (exc.code, exc.line) == ("yaml-unsupported", 1)
    exc = error("a: 1\na: 2\n---\nb: [\n")
    assert (exc.code, exc.line) == ("yaml-duplicate-key", 2)
    assert error("a: 1\n---\nb: [\n").code == "yaml-syntax"


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
def test_event_limits_agree_with_the_composed_graph_check(depth: int, data: st.DataObject) -> None:
    text = data.draw(_block(depth, 0)).encode()
    assert outcome(text) == reference(text) == pure(text)


# --- libyaml (the C parser) reads files as ruamel's pure-Python parser did ------

_KEY = st.sampled_from(["a", "name", "b c", "x-y", "é", "'q k'", '"d k"', "k8s", "on", "1x"])
_SCALAR = st.sampled_from(
    ["1", "-7", "0x1F", "0o17", "1_000", "2.5", "1e3", "true", "false", "null", "~", "yes",
     "plain text", "'single ''q'''", '"esc \\t \\u00e9 \\U0001F600"', "http://h:80/p", "é😀",
     "a: b", "- x", "# not a comment", "[x]"]
)  # fmt: skip


@st.composite
def _document(draw: st.DrawFn, depth: int = 0, indent: int = 0) -> str:
    """A benign document in mixed block and flow styles, with comments and anchors."""
    pad = " " * indent
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        scalar = draw(_SCALAR)
        plain = scalar[0] not in "'\"" and (": " in scalar or scalar.startswith(("- ", "#", "[")))
        return f"'{scalar}'" if plain else scalar
    keys = draw(st.lists(_KEY, min_size=1, max_size=3, unique=True))
    children = [draw(_document(depth + 1, indent + 2)) for _ in keys]
    style = draw(st.sampled_from(["flow-map", "flow-seq", "block-map", "block-seq"]))
    if any("\n" in c for c in children):
        style = style.replace("flow", "block")
    if style == "flow-map":
        return "{" + ", ".join(f"{k}: {c}" for k, c in zip(keys, children, strict=True)) + "}"
    if style == "flow-seq":
        return "[" + ", ".join(children) + "]"
    comment = draw(st.sampled_from(["", "  # note", " #"]))
    lines = []
    for k, c in zip(keys, children, strict=True):
        lead = f"{k}:" if style == "block-map" else "-"
        if c.startswith("\n"):
            lines.append(f"{pad}{lead}{comment}{c}")
        elif draw(st.booleans()) and style == "block-map":
            lines.append(f"{pad}{lead} |{comment}\n{pad}  {c}\n{pad}  second line")
        else:
            lines.append(f"{pad}{lead} {c}{comment}")
    return "\n" + "\n".join(lines)


@settings(max_examples=200, deadline=None)
@given(docs=st.lists(_document(), min_size=1, max_size=3), anchor=st.booleans())
def test_libyaml_and_ruamels_parser_give_the_same_values_and_positions(
    docs: list[str], anchor: bool
) -> None:
    text = "\n---\n".join(d.lstrip("\n") if d.startswith("\n") else d for d in docs) + "\n"
    if anchor:
        text = "base: &b {k: 1}\nuse:\n  <<: *b\n  again: *b\n---\n" + text
    assert outcome(text.encode()) == pure(text.encode())


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # libyaml ignores the %YAML version; ruamel's parser reads the document.
        ("%YAML 1.1\n---\na: [yes, off, 0o17]\n", {"a": [True, False, "0o17"]}),
        ("a: &x 1\nb: &x 2\nc: *x\n", {"a": 1, "b": 2, "c": 2}),  # libyaml refuses &x twice
        ("a: b\n...\nc: d\n", {"a": "b"}),  # libyaml wants --- after ...
        ('x: "\\ud83d\\ude00"\n', {"x": "😀"}),  # libyaml refuses surrogate escapes
        ("a: 'x\u2028y'\nb: 1\n", {"a": "x\u2028y", "b": 1}),  # U+2028 breaks lines in 1.1 only
        ("--- >\n  folded\n  text\n", "folded text\n"),  # ruamel's rt loader added a \x07 here
    ],
)
def test_where_libyaml_differs_ruamels_parser_decides(text: str, value: object) -> None:
    assert load_yaml(text.encode())[0].value == value


def test_positions_after_u2028_count_lines_as_yaml_1_2_does() -> None:
    [doc] = load_yaml("a: 'x\u2028y'\nb: 1\n".encode())
    assert doc.key_position(("b",)) == (2, 1)


def test_syntax_errors_keep_ruamels_wording_and_place() -> None:
    exc = error("a:\n\t- 1\n")
    assert (exc.code, exc.message, exc.line, exc.column) == (
        "yaml-syntax",
        "found character '\\t' that cannot start any token",
        2,
        1,
    )
    assert error("a: *nowhere\n").message == "found undefined alias 'nowhere'"


def test_an_empty_value_is_placed_on_its_keys_line() -> None:
    # ruamel placed it at the next token (the next line); libyaml after the colon.
    [doc] = load_yaml(b"a:\nb: 1\n")
    assert doc.position(("a",)) == (1, 3)


def test_without_libyaml_loading_fails_loudly_instead_of_going_slow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ruamel.yaml.main

    monkeypatch.setattr(ruamel.yaml.main, "CParser", None)
    with pytest.raises(RuntimeError, match=r"ruamel\.yaml\.clib"):
        load_yaml(b"a: 1\n")
