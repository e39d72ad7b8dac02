"""Reuse parsing and per-definition checks across snapshots of the same repo.

Example::

    from konorkestra.repo import AnalysisCache, load_commit, resolve, validate
    from konorkestra.repo.analysis import analyze

    cache = AnalysisCache()                          # held by its user (e.g. the Center)
    for sha in new_commits:
        snap = load_commit(repo, sha, cache=cache)   # parses only changed files
        analysis = analyze(snap, cache=cache)        # re-checks only changed definitions
        diagnostics = validate(snap, history=history, analysis=analysis)
        resolved = resolve(snap, analysis=analysis) if not diagnostics else None

Invariants:

* An entry is keyed by ``(path, content key)``: ``git:<blob id>`` for a Git
  commit (a blob id names its bytes), ``sha256:<hex>`` of the bytes for a work
  tree (no mtime races). Sources of other types are never cached.
* Everything stored is a pure function of its key: the parse of the file, and
  per document the :class:`~konorkestra.repo.analysis.DefinitionFacts` (schema
  diagnostics carry the path, which is part of the key). A built ConfigSet
  also depends on its ``$ref`` schema and ``spec.files``, so it is stored
  together with their content keys (or their read error) and rebuilt when any
  of them differs. Hence a cached analysis equals an uncached one exactly.
* Cross-definition checks (duplicates, versions, references, immutability) are
  never cached; :func:`~konorkestra.repo.analysis.analyze` redoes them per
  snapshot with dict lookups.
* Memory is bounded: least recently used entries are dropped beyond
  ``max_entries`` files or about ``max_bytes`` (file bytes, plus blob and
  ``spec.files`` bytes of built ConfigSets).
* Cached objects are shared between snapshots and must not be mutated.
* Safe to use from several threads (a lock guards the LRU; computing a value
  twice in a race is harmless).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from konorkestra.repo.analysis import DefinitionFacts, definition_facts
from konorkestra.repo.configsets import BuiltConfigSet, build_configset, dependencies
from konorkestra.repo.diagnostics import Diagnostic
from konorkestra.repo.loader import Definition, parse_file
from konorkestra.repo.sources import CommitSource, FileSource, SourceError, WorktreeSource

DEFAULT_MAX_ENTRIES = 50_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@dataclass
class CacheStats:
    """Counts of work done (misses) and saved (hits), for tests and metrics."""

    parse_hits: int = 0
    parses: int = 0
    facts_hits: int = 0
    facts_computed: int = 0
    build_hits: int = 0
    builds: int = 0
    evictions: int = 0


@dataclass
class _Entry:
    parsed: tuple[list[Definition], list[Diagnostic]] | None = None
    facts: dict[int, DefinitionFacts] = field(default_factory=dict)
    built: dict[int, tuple[tuple[str, ...], BuiltConfigSet]] = field(default_factory=dict)
    weight: int = 0


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _built_weight(built: BuiltConfigSet) -> int:
    blob = len(built.configset.blob()) if built.configset is not None else 0
    return blob + sum(len(b) for b in built.files.values())


class AnalysisCache:
    """LRU of parses, definition facts and built ConfigSets by ``(path, content key)``."""

    def __init__(
        self, *, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.stats = CacheStats()
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The approximate bytes accounted to entries now held."""
        return self._bytes

    def _entry(self, path: str, key: str) -> _Entry:
        with self._lock:
            entry = self._entries.get((path, key))
            if entry is None:
                entry = self._entries[(path, key)] = _Entry()
                self._evict()
            else:
                self._entries.move_to_end((path, key))
            return entry

    def _grow(self, path: str, key: str, entry: _Entry, weight: int) -> None:
        """Account ``weight`` more bytes to ``entry``, then evict down to the bounds."""
        with self._lock:
            if self._entries.get((path, key)) is not entry:
                return  # evicted meanwhile: nothing held, nothing to account
            entry.weight += weight
            self._bytes += weight
            self._evict()

    def _evict(self) -> None:
        """Drop least recently used entries beyond the bounds (caller holds the lock)."""
        while self._entries and (
            len(self._entries) > self.max_entries or self._bytes > self.max_bytes
        ):
            _, old = self._entries.popitem(last=False)
            self._bytes -= old.weight
            self.stats.evictions += 1

    def parse(
        self, path: str, content_id: str, source: FileSource
    ) -> tuple[str | None, list[Definition], list[Diagnostic]]:
        """``(content key, definitions, load diagnostics)`` of one candidate file."""
        data: bytes | None = None
        if isinstance(source, CommitSource):
            key: str | None = f"git:{content_id}"
        elif isinstance(source, WorktreeSource):
            data = source.read_id(content_id)
            key = _sha256(data)
        else:
            key = None
        if key is None:
            defs, diags = parse_file(path, source.read_id(content_id))
            return None, defs, diags
        entry = self._entry(path, key)
        parsed = entry.parsed
        if parsed is None:
            self.stats.parses += 1
            if data is None:
                data = source.read_id(content_id)
            parsed = entry.parsed = parse_file(path, data)
            self._grow(path, key, entry, len(data))
        else:
            self.stats.parse_hits += 1
        return key, list(parsed[0]), list(parsed[1])

    def facts(self, defn: Definition, key: str | None) -> DefinitionFacts:
        """:func:`~konorkestra.repo.analysis.definition_facts` of ``defn``, reused by key."""
        if key is None:
            return definition_facts(defn)
        entry = self._entry(defn.file, key)
        found = entry.facts.get(defn.doc.index)
        if found is None:
            self.stats.facts_computed += 1
            found = entry.facts[defn.doc.index] = definition_facts(defn)
        else:
            self.stats.facts_hits += 1
        return found

    def configset(self, defn: Definition, key: str | None, source: FileSource) -> BuiltConfigSet:
        """:func:`~konorkestra.repo.configsets.build_configset`, reused while its inputs match."""
        deps = None if key is None else dependency_keys(defn, source)
        if key is None or deps is None:
            return build_configset(defn, source)
        entry = self._entry(defn.file, key)
        found = entry.built.get(defn.doc.index)
        if found is not None and found[0] == deps:
            self.stats.build_hits += 1
            return found[1]
        self.stats.builds += 1
        built = build_configset(defn, source)
        entry.built[defn.doc.index] = (deps, built)
        replaced = _built_weight(found[1]) if found is not None else 0
        self._grow(defn.file, key, entry, _built_weight(built) - replaced)
        return built


def dependency_keys(defn: Definition, source: FileSource) -> tuple[str, ...] | None:
    """Content keys (or read errors) of the files a ConfigSet's build reads; None: uncacheable."""
    keys: list[str] = []
    for path in dependencies(defn):
        try:
            if isinstance(source, CommitSource):
                keys.append("git:" + source.blob_id(path))
            elif isinstance(source, WorktreeSource):
                keys.append(_sha256(source.read(path)))
            else:
                return None
        except SourceError as exc:
            keys.append(f"!{exc.code}:{exc.message}")
    return tuple(keys)
