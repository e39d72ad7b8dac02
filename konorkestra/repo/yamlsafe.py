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
* Nesting depth and alias count are enforced by the scanner, token by token,
  before anything is composed (:class:`_LimitedScanner`): ruamel's pure-Python
  scanner buffers a whole line and re-checks every open flow level per token,
  so 20,000 ``[`` on one line cost seconds before the parser saw any of them.
  The scanner check is exact: it counts only real ``[``/``{`` and block
  indentation tokens (never brackets inside quotes, comments or block
  scalars), and the open flow levels plus open block indents are a lower bound
  of the depth the composed graph has, so it refuses only files that the
  depth check on the composed graph (kept as the reference) would refuse too.
* Merge keys (``<<: *base``) are honoured; keys written explicitly win.
* Positions are 1-based ``(line, column)`` of each value (``position``) and
  of each mapping key (``key_position``), addressed by JSON path tuples.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scanner import RoundTripScanner

MAX_FILE_BYTES = 1024 * 1024
MAX_DOCUMENTS = 500
MAX_DEPTH = 64
MAX_NODES = 250_000
"""Nodes per file counted after alias expansion."""
MAX_ALIASES = 1_000
"""Aliases (``*name``) per file; each is cheap, but 100,000 of them are not."""

JsonPath = tuple[str | int, ...]
_T = "tag:yaml.org,2002:"
_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


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


def _code(character: object) -> int:
    return character if isinstance(character, int) else ord(str(character)[:1] or "\0")


class _LimitedScanner(RoundTripScanner):
    """ruamel's round-trip scanner, refusing too deep or alias-heavy input as it scans.

    A collection opened while ``k`` flow and ``b`` block collections are open
    has those ``k + b`` collections as ancestors, so its node in the composed
    graph is at depth ``k + b`` or more: refusing when that exceeds
    :data:`MAX_DEPTH` never refuses a file that the composed-graph check would
    accept. (Flow collections ignore indentation, so every open block indent
    encloses them.)
    """

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.aliases = 0

    def _depth_error(self) -> YamlError:
        mark = self.reader.get_mark()
        return YamlError(
            "yaml-limit", f"nested deeper than {MAX_DEPTH} levels", mark.line + 1, mark.column + 1
        )

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:
        # The new collection has len(indents) block and flow_level flow ancestors.
        if len(self.indents) + self.flow_level > MAX_DEPTH:
            raise self._depth_error()
        super().fetch_flow_collection_start(TokenClass, to_push)

    def add_indent(self, column: int) -> bool:
        opened = bool(super().add_indent(column))
        # A new block collection: len(indents) - 1 open block collections enclose it.
        if opened and len(self.indents) - 1 > MAX_DEPTH:
            raise self._depth_error()
        return opened

    def fetch_alias(self) -> None:
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            mark = self.reader.get_mark()
            raise YamlError(
                "yaml-limit",
                f"more than {MAX_ALIASES} aliases in one file (an alias bomb?)",
                mark.line + 1,
                mark.column + 1,
            )
        super().fetch_alias()


_SCANNER: type[RoundTripScanner] = _LimitedScanner
"""The scanner :func:`load_yaml` uses (tests swap in ruamel's own as the reference)."""


def _compose(text: str) -> Iterator[Node]:
    yaml = YAML(typ="rt", pure=True)
    yaml.Scanner = _SCANNER
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield from yaml.compose_all(text)


def load_yaml(data: bytes) -> list[YamlDocument]:
    """Parse every document in ``data``; raise :class:`YamlError` on any problem."""
    if len(data) > MAX_FILE_BYTES:
        raise YamlError("yaml-limit", f"file is {len(data)} bytes; the limit is {MAX_FILE_BYTES}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlError("yaml-syntax", "file is not valid UTF-8", line, 1) from None
    docs: list[YamlDocument] = []
    budget = [MAX_NODES]
    try:
        for index, node in enumerate(_compose(text)):
            if index >= MAX_DOCUMENTS:
                raise _fail("yaml-limit", f"more than {MAX_DOCUMENTS} documents in one file", node)
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
    except ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise YamlError(
            "yaml-syntax",
            f"character U+{_code(exc.character):04X} is not allowed in YAML",
            line,
            column,
        ) from None
    except YAMLError as exc:
        raise YamlError("yaml-syntax", str(exc).splitlines()[0]) from None
    except RecursionError:
        raise YamlError("yaml-limit", f"nested deeper than {MAX_DEPTH} levels") from None
    return docs
