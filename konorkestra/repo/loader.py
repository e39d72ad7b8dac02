"""Load every definition of a config repo, from a work tree or a Git commit.

Example::

    from konorkestra.repo import load_commit, load_worktree
    snap = load_worktree("examples/config-repo")
    [(d.kind, d.name, d.file, d.line) for d in snap.definitions]
    snap.read_file("files/nginx/payments.conf")
    snap = load_commit("/srv/config.git", "main")     # dulwich, no git binary
    snap.commit, snap.diagnostics

Invariants:

* A file is a definition file when it is a visible ``*.yaml``/``*.yml`` file
  with a document whose ``apiVersion`` is ``konorkestra.io/v1``; other files
  and documents are skipped. Files not mentioning ``konorkestra.io`` are not
  even parsed, which keeps large repos fast.
* In a definition file a bad ``kind`` (``unknown-kind``), another
  ``konorkestra.io/`` version (``api-version``) and any YAML problem are load
  diagnostics; loading never raises for bad content, only for a missing
  directory, a non-repository or an unknown revision (:class:`RepoError`).
* Every definition keeps its file and the line/column of each of its nodes.
* ``Snapshot.content_keys`` maps a candidate path to a key naming its exact
  content (``git:<blob id>`` for commits; with a cache, ``sha256:<hex>`` for
  work trees). It is what an :class:`~konorkestra.repo.cache.AnalysisCache`
  keys on; a path without a key is simply analyzed without the cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from konorkestra.model.definitions import API_VERSION, KINDS
from konorkestra.repo.diagnostics import Diagnostic, json_pointer
from konorkestra.repo.sources import (
    CommitSource,
    FileSource,
    RepoError,
    WorktreeSource,
    open_repo,
    resolve_commit,
)
from konorkestra.repo.yamlsafe import MAX_FILE_BYTES, JsonPath, YamlDocument, YamlError, load_yaml

if TYPE_CHECKING:
    from konorkestra.repo.cache import AnalysisCache

_MARKER = b"konorkestra.io"


@dataclass(frozen=True)
class Definition:
    """One ``konorkestra.io/v1`` document and where it was written."""

    kind: str
    name: str
    file: str
    doc: YamlDocument = field(repr=False)

    @property
    def value(self) -> dict[str, Any]:
        value: dict[str, Any] = self.doc.value
        return value

    @property
    def line(self) -> int:
        return self.doc.line

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.value.get("spec")
        return spec if isinstance(spec, dict) else {}

    def where(self, path: JsonPath = (), *, key: bool = False) -> dict[str, Any]:
        """Keyword arguments placing a :class:`Diagnostic` at ``path``."""
        line, column = self.doc.key_position(path) if key else self.doc.position(path)
        return {
            "file": self.file,
            "line": line,
            "column": column,
            "kind": self.kind,
            "name": self.name or None,
            "path": json_pointer(path),
        }


@dataclass(frozen=True)
class Snapshot:
    """Every definition of one state of a config repo."""

    definitions: tuple[Definition, ...]
    diagnostics: tuple[Diagnostic, ...]
    source: FileSource = field(repr=False)
    label: str
    commit: str | None = None
    subject: str | None = None
    content_keys: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """Candidate path -> key of the content its definitions were parsed from."""

    def read_file(self, path: str) -> bytes:
        """Raw bytes of a repo file; raises :class:`~konorkestra.repo.sources.SourceError`."""
        return self.source.read(path)


def parse_file(path: str, data: bytes) -> tuple[list[Definition], list[Diagnostic]]:
    """The definitions in one file's bytes (pure; cached by callers)."""
    if _MARKER not in data[: MAX_FILE_BYTES + 1]:
        return [], []
    try:
        docs = load_yaml(data)
    except YamlError as exc:
        if exc.code == "yaml-limit" and b"konorkestra.io/" not in data[:65536]:
            return [], []  # a big file that is not ours
        return [], [
            Diagnostic.error(exc.code, exc.message, file=path, line=exc.line, column=exc.column)
        ]
    definitions: list[Definition] = []
    diagnostics: list[Diagnostic] = []
    for doc in docs:
        value = doc.value
        if not isinstance(value, dict):
            continue
        api, kind = value.get("apiVersion"), value.get("kind")
        if not isinstance(api, str) or not api.startswith("konorkestra.io/"):
            continue
        meta = value.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        defn = Definition(str(kind), name if isinstance(name, str) else "", path, doc)
        if api != API_VERSION:
            diagnostics.append(
                Diagnostic.error(
                    "api-version",
                    f"apiVersion {api!r} is not supported",
                    **defn.where(("apiVersion",)),
                )
            )
        elif kind not in KINDS:
            diagnostics.append(
                Diagnostic.error(
                    "unknown-kind",
                    f"unknown kind {kind!r} for apiVersion {API_VERSION}",
                    **defn.where(("kind",)),
                )
            )
        else:
            definitions.append(defn)
    return definitions, diagnostics


Parser = Callable[[str, str, FileSource], tuple[list[Definition], list[Diagnostic]]]


def _parse_candidate(
    path: str, content_id: str, source: FileSource
) -> tuple[list[Definition], list[Diagnostic]]:
    return parse_file(path, source.read_id(content_id))


def load_source(
    source: FileSource,
    *,
    label: str,
    commit: str | None = None,
    subject: str | None = None,
    parser: Parser = _parse_candidate,
    cache: AnalysisCache | None = None,
) -> Snapshot:
    """Load every definition visible through ``source`` (parsing through ``cache`` if given)."""
    definitions: list[Definition] = []
    diagnostics: list[Diagnostic] = []
    keys: dict[str, str] = {}
    git = isinstance(source, CommitSource)
    for path, content_id in source.candidates():
        if cache is not None:
            key, defs, diags = cache.parse(path, content_id, source)
        else:
            key = f"git:{content_id}" if git else None
            defs, diags = parser(path, content_id, source)
        if key is not None:
            keys[path] = key
        definitions += defs
        diagnostics += diags
    return Snapshot(tuple(definitions), tuple(diagnostics), source, label, commit, subject, keys)


def load_worktree(path: str | os.PathLike[str], *, cache: AnalysisCache | None = None) -> Snapshot:
    """Load the definitions below directory ``path``; raise :class:`RepoError` if absent."""
    if not os.path.isdir(path):
        raise RepoError(f"{os.fspath(path)}: no such directory")
    return load_source(WorktreeSource(path), label=os.fspath(path), cache=cache)


def load_commit(
    repo_path: str | os.PathLike[str], rev: str = "HEAD", *, cache: AnalysisCache | None = None
) -> Snapshot:
    """Load the definitions of commit ``rev`` in the Git repo at ``repo_path``."""
    repo = open_repo(repo_path)
    commit = resolve_commit(repo, rev)
    sha = commit.id.decode("ascii")
    return load_source(
        CommitSource(repo, commit),
        label=f"{os.fspath(repo_path)}@{sha[:12]}",
        commit=sha,
        subject=commit_subject(commit.message),
        cache=cache,
    )


def commit_subject(message: bytes) -> str:
    """First line of a commit message."""
    return message.decode("utf-8", "replace").strip().split("\n", 1)[0]
