"""The first pass of :func:`~konorkestra.repo.yamlsafe.load_yaml`: limits on the event stream.

Example::

    >>> from ruamel.yaml import YAML
    >>> from konorkestra.repo.yamlevents import Limits, scan_events
    >>> limits = Limits(depth=2, nodes=100, aliases=10, documents=5)
    >>> scan = scan_events(YAML(typ="safe", pure=False).parse("a: [[[1]]]\\n"), limits)
    >>> scan.stop
    Violation(code='yaml-limit', message='nested deeper than 2 levels', line=1, column=6)
    >>> scan.documents  # documents completed before the stop
    0

Invariants:

* Lazy and first-stop: events are pulled one at a time and the pass returns
  at the first violation or parser error, so a hostile file costs only the
  events up to the point where it goes wrong, never a composed graph.
* Exact, not a heuristic: a node's depth here is the number of collections
  open when its event arrives, which is its depth in the composed graph
  (roots are 0, a collection's keys and values one more). A collection
  opened deeper than ``depth`` stops the pass; the composed-graph check in
  ``yamlsafe`` refuses it too, and refuses the scalars and aliases one level
  further down that this pass leaves to it (they cannot nest deeper, so
  composing them is bounded).
* ``nodes`` counts node-creating events (scalars, sequence and mapping
  starts) in the whole file: the nodes as written, each of which is at least
  one node after alias expansion. Aliases are counted separately
  (``aliases``); what they expand to is the composed check's business.
* ``documents`` counts document roots; the violation points at the first
  root past the limit.
* Nothing here reads the disk or raises for bad input: the outcome is a
  :class:`Scan` the caller turns into its own error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    NodeEvent,
)


@dataclass(frozen=True)
class Limits:
    """Caps on one file, checked event by event."""

    depth: int
    nodes: int
    aliases: int
    documents: int


@dataclass(frozen=True)
class Violation:
    """A limit exceeded at a 1-based ``(line, column)``."""

    code: str
    message: str
    line: int
    column: int


@dataclass(frozen=True)
class Scan:
    """How far the event stream got.

    ``documents`` is the number of documents completed before ``stop``; all of
    them are within the limits. ``stop`` is the first violation or parser
    error, or ``None`` when the whole stream is within the limits.
    ``directive``: a document declared a ``%YAML`` version. ``odd_anchors``:
    in some document an anchor is defined twice or an alias names no earlier
    anchor. (libyaml reads both differently from ruamel's own parser.)
    """

    documents: int
    stop: Violation | YAMLError | None
    directive: bool = False
    odd_anchors: bool = False


def scan_events(events: Iterable[Event], limits: Limits) -> Scan:
    """Walk ``events`` until the first violation or parser error; see the module invariants."""
    depth = nodes = aliases = roots = documents = 0
    anchors: set[str] = set()
    directive = odd_anchors = False

    def stop(at: Violation | YAMLError | None) -> Scan:
        return Scan(documents, at, directive, odd_anchors)

    try:
        for event in events:
            if isinstance(event, AliasEvent):
                aliases += 1
                if aliases > limits.aliases:
                    message = f"more than {limits.aliases} aliases in one file (an alias bomb?)"
                    return stop(_at(event, message))
                odd_anchors = odd_anchors or event.anchor not in anchors
            elif isinstance(event, NodeEvent):  # a scalar or a collection start
                nodes += 1
                if depth > limits.depth and isinstance(event, CollectionStartEvent):
                    return stop(_at(event, _deep(limits)))
                if nodes > limits.nodes:
                    return stop(_at(event, f"more than {limits.nodes} nodes in one file"))
                if depth == 0:
                    roots += 1
                    if roots > limits.documents:
                        message = f"more than {limits.documents} documents in one file"
                        return stop(_at(event, message))
                if isinstance(event, CollectionStartEvent):
                    depth += 1
                if event.anchor is not None:
                    odd_anchors = odd_anchors or event.anchor in anchors
                    anchors.add(event.anchor)
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
            elif isinstance(event, DocumentEndEvent):
                documents += 1
                anchors.clear()
            elif isinstance(event, DocumentStartEvent):
                directive = directive or getattr(event, "version", None) is not None
    except YAMLError as exc:
        return stop(exc)
    return stop(None)


def _deep(limits: Limits) -> str:
    return f"nested deeper than {limits.depth} levels"


def _at(event: Event, message: str) -> Violation:
    mark = event.start_mark
    return Violation("yaml-limit", message, mark.line + 1, mark.column + 1)
