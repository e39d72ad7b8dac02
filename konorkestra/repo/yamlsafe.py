"""Safe, bounded YAML loading with the file position of every node.

Example::

    >>> from konorkestra.repo.yamlsafe import load_yaml
    >>> [doc] = load_yaml(b"kind: Policy\\nspec:\\n  steps: [{percent: 100}]\\n")
    >>> doc.value
    {'kind': 'Policy', 'spec': {'steps': [{'percent': 100}]}}
    >>> doc.position(("spec", "steps", 0, "percent"))
    (3, 21)

Invariants:

* Only the JSON-compatible core of YAML is accepted: maps with string keys,
  sequences, strings, integers, finite floats, booleans and null. Custom tags,
  timestamps, sets, binary, non-string keys and duplicate keys are a
  :class:`YamlError`; no Python object is ever constructed from a tag.
* Work is bounded before it is done: file size, document count, nesting depth,
  alias count and the node count *after* alias expansion are capped, so a
  "billion laughs" file fails in milliseconds instead of hanging. Recursive
  aliases are errors.
* Limits come before work: a first pass over the parser's event stream
  (:func:`~konorkestra.repo.yamlevents.scan_events`, lazy) refuses nesting
  depth, alias count, node count and document count at the first event past
  a limit, naming its line and column, before anything is composed; so
  hostile files fail in milliseconds. The depth it counts is the composed
  graph's, so it refuses nothing for depth that the composed-graph checks
  would accept; its node count is of the whole file as written (several
  documents whose mapping keys push the total past MAX_NODES used to pass).
  Errors are reported in document order: documents before the one that
  stopped the pass are composed and checked first.
* libyaml (``ruamel.yaml.clib``, a declared dependency; missing, loading
  fails loudly) parses and composes. ruamel's pure-Python YAML 1.2 parser
  decides instead wherever the two could disagree: a ``%YAML`` directive,
  an anchor defined twice or an alias before its anchor, U+0085, U+2028,
  U+2029 or U+FEFF in the text, and any syntax error (whose wording and
  place are then ruamel's, as before). Known differences that remain: an
  empty value is placed after its key's colon (ruamel placed it at the next
  token), a tab after ``:`` or ending a line is white space (ruamel refused
  it), and a node with both a tag and an anchor is placed at the first.
* Merge keys (``<<: *base``) are honoured; keys written explicitly win.
* Positions are 1-based ``(line, column)`` of each value (``position``) and
  of each mapping key (``key_position``), addressed by JSON path tuples.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import ruamel.yaml.main
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from konorkestra.repo.yamlevents import Limits, Violation, scan_events

MAX_FILE_BYTES = 1024 * 1024
MAX_DOCUMENTS = 500
MAX_DEPTH = 64
MAX_NODES = 250_000
"""Nodes per file: as written (first pass) and after alias expansion (composed graph)."""
MAX_ALIASES = 1_000
"""Aliases (``*name``) per file; each is cheap, but 100,000 of them are not."""

JsonPath = tuple[str | int, ...]
_T = "tag:yaml.org,2002:"
_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
"""What ruamel's reader refuses (libyaml's reader refuses the same set)."""
_PURE_ONLY = re.compile("[\x85\u2028\u2029\ufeff]")
"""Characters libyaml reads differently: U+0085, U+2028 and U+2029 break lines in
YAML 1.1 only, and libyaml skips U+FEFF at the start of any line."""


class YamlError(ValueError):
    """The file is not acceptable YAML; ``code`` is a diagnostic code."""

    def __init__(self, code: str, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.code, self.message, self.line, self.column = code, message, line, column


@dataclass
class YamlDocument:
    """One document: its plain value and where each node was written."""

    index: int
    line: int
    column: int
    value: Any
    positions: dict[JsonPath, tuple[int, int]] = field(default_factory=dict, repr=False)
    key_positions: dict[JsonPath, tuple[int, int]] = field(default_factory=dict, repr=False)

    def position(self, path: JsonPath) -> tuple[int, int]:
        """Position of the node at ``path``, or of its nearest written ancestor."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return (self.line, self.column)

    def key_position(self, path: JsonPath) -> tuple[int, int]:
        """Position of the key naming ``path`` (falls back to :meth:`position`)."""
        return self.key_positions.get(path) or self.position(path)


def _pos(node: Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _fail(code: str, message: str, node: Node) -> YamlError:
    return YamlError(code, message, *_pos(node))


def _scalar(node: ScalarNode) -> Any:
    tag, text = str(node.tag), str(node.value)
    if tag == _T + "str":
        return _text(text, node)
    if tag == _T + "null":
        return None
    if tag == _T + "bool":
        return text.lower() in _TRUE if text.lower() in _TRUE | _FALSE else _unsupported(node)
    if tag == _T + "int":
        digits = text.replace("_", "")
        sign = -1 if digits.startswith("-") else 1
        digits = digits.lstrip("+-")
        bases = {"0x": 16, "0o": 8, "0b": 2}
        try:
            return (
                sign * int(digits[2:], bases[digits[:2]])
                if digits[:2] in bases
                else (sign * int(digits, 10))
            )
        except ValueError:
            return _unsupported(node)
    if tag == _T + "float":
        if text.lower().lstrip("+-") in {".inf", ".nan"}:
            raise _fail("yaml-unsupported", f"{text} cannot be represented in JSON", node)
        try:
            return float(text.replace("_", ""))
        except ValueError:
            return _unsupported(node)
    if tag == _T + "timestamp":
        raise _fail(
            "yaml-unsupported", f"{text} is a YAML timestamp; quote it to keep it a string", node
        )
    return _unsupported(node)


def _text(text: str, node: Node) -> str:
    """Join ``\\uD83D\\uDE00``-style surrogate pairs; refuse lone surrogates."""
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    try:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise _fail("yaml-unsupported", "string contains a lone UTF-16 surrogate", node) from None


def _unsupported(node: Node) -> Any:
    raise _fail("yaml-unsupported", f"unsupported YAML value {node.value!r} (tag {node.tag})", node)


class _Builder:
    """Turns one composed node graph into plain values, within the limits."""

    def __init__(self, doc: YamlDocument, budget: list[int]) -> None:
        self.doc, self.budget = doc, budget
        self.active: set[int] = set()

    def expanded_size(self, node: Node, memo: dict[int, int], depth: int = 0) -> int:
        """Node count after alias expansion, in time linear in the distinct nodes."""
        if id(node) in memo:
            return memo[id(node)]
        if depth > MAX_DEPTH:
            raise _fail("yaml-limit", f"nested deeper than {MAX_DEPTH} levels", node)
        if id(node) in self.active:
            raise _fail("yaml-unsupported", "an alias refers to a node containing itself", node)
        self.active.add(id(node))
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        total = 1 + sum(self.expanded_size(c, memo, depth + 1) for c in children)
        self.active.discard(id(node))
        memo[id(node)] = total
        if total > self.budget[0]:
            raise _fail(
                "yaml-limit",
                f"more than {MAX_NODES} nodes after expanding aliases (an alias bomb?)",
                node,
            )
        return total

    def build(self, node: Node, path: JsonPath, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _fail("yaml-limit", f"nested deeper than {MAX_DEPTH} levels", node)
        self.budget[0] -= 1
        if self.budget[0] < 0:
            raise _fail(
                "yaml-limit",
                f"more than {MAX_NODES} nodes after expanding aliases (an alias bomb?)",
                node,
            )
        self.doc.positions.setdefault(path, _pos(node))
        if isinstance(node, ScalarNode):
            return _scalar(node)
        if id(node) in self.active:
            raise _fail("yaml-unsupported", "an alias refers to a node containing itself", node)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode) and node.tag == _T + "seq":
                return [
                    self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)
                ]
            if isinstance(node, MappingNode) and node.tag == _T + "map":
                return self.mapping(node, path, depth)
            return _unsupported(node)
        finally:
            self.active.discard(id(node))

    def mapping(self, node: MappingNode, path: JsonPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _T + "merge":
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    value = self.build(source, path, depth)
                    if not isinstance(value, dict):
                        raise _fail("yaml-unsupported", "<< must merge a mapping", source)
                    merged = {**value, **merged}
                continue
            if not isinstance(key_node, ScalarNode) or not isinstance(
                key := _scalar(key_node), str
            ):
                raise _fail("yaml-unsupported", "mapping keys must be strings", key_node)
            if key in out:
                raise _fail("yaml-duplicate-key", f"duplicate key {key!r}", key_node)
            self.doc.key_positions[(*path, key)] = _pos(key_node)
            out[key] = self.build(value_node, (*path, key), depth + 1)
        return {**merged, **out} if merged else out


def _limits() -> Limits:
    return Limits(depth=MAX_DEPTH, nodes=MAX_NODES, aliases=MAX_ALIASES, documents=MAX_DOCUMENTS)


def _yaml(pure: bool) -> YAML:
    if pure:
        return YAML(typ="safe", pure=True)
    yaml = YAML(typ="safe", pure=False)
    c_parser = getattr(ruamel.yaml.main, "CParser", None)  # None when the import failed
    if c_parser is None or yaml.Parser is not c_parser:
        raise RuntimeError(
            "konorkestra needs ruamel.yaml.clib (libyaml) to read YAML, and it is not "
            "importable here; reinstall konorkestra or pip install 'ruamel.yaml.clib>=0.2.12,<0.3'"
        )
    return yaml


def _use_pure(text: str) -> bool:
    """Whether libyaml could read ``text`` differently from ruamel's own parser."""
    return _PURE_ONLY.search(text) is not None


def _documents(text: str) -> Iterator[Node]:
    """Check the event stream, then compose the documents that passed; raise what stopped it."""
    pure = _use_pure(text)
    scan = scan_events(_yaml(pure).parse(text), _limits())
    if not pure and (scan.directive or scan.odd_anchors or isinstance(scan.stop, YAMLError)):
        pure = True  # ruamel's own parser decides, and words the error, as it always has
        scan = scan_events(_yaml(pure).parse(text), _limits())
    composed = _yaml(pure).compose_all(text)
    yield from composed if scan.stop is None else islice(composed, scan.documents)
    if isinstance(scan.stop, Violation):
        raise YamlError(scan.stop.code, scan.stop.message, scan.stop.line, scan.stop.column)
    if scan.stop is not None:
        raise scan.stop


def _character_error(text: str, position: int, character: int) -> YamlError:
    line = text[:position].count("\n") + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return YamlError(
        "yaml-syntax", f"character U+{character:04X} is not allowed in YAML", line, column
    )


def load_yaml(data: bytes) -> list[YamlDocument]:
    """Parse every document in ``data``; raise :class:`YamlError` on any problem."""
    if len(data) > MAX_FILE_BYTES:
        raise YamlError("yaml-limit", f"file is {len(data)} bytes; the limit is {MAX_FILE_BYTES}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlError("yaml-syntax", "file is not valid UTF-8", line, 1) from None
    if found := _NON_PRINTABLE.search(text):
        raise _character_error(text, found.start(), ord(found.group()))
    docs: list[YamlDocument] = []
    budget = [MAX_NODES]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for index, node in enumerate(_documents(text)):
                doc = YamlDocument(index, *_pos(node), value=None)
                builder = _Builder(doc, budget)
                builder.expanded_size(node, {})
                doc.value = builder.build(node, (), 0)
                docs.append(doc)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlError("yaml-syntax", str(problem), *where) from None
    except ReaderError as exc:  # unreachable after _NON_PRINTABLE; libyaml counts UTF-8 bytes
        position = len(text.encode()[: exc.position].decode(errors="ignore"))
        raise _character_error(text, position, int(exc.character)) from None
    except YAMLError as exc:
        raise YamlError("yaml-syntax", str(exc).splitlines()[0]) from None
    return docs
