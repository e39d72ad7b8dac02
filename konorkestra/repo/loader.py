"""Load every definition of a config repo, from a work tree or a Git commit.

Example::

    from konorkestra.repo import load_commit, load_worktree
    from konorkestra.repo.loader import ignored_documents
    snap = load_worktree("examples/config-repo")
    [(d.kind, d.name, d.file, d.line) for d in snap.definitions]
    snap.read_file("files/nginx/payments.conf")
    snap = load_commit("/srv/config.git", "main")     # dulwich, no git binary
    snap.commit, snap.diagnostics
    [(i.file, i.line, i.kind) for i in ignored_documents(snap.source)]  # -v notes

Invariants:

* Candidates are the visible ``*.yaml``/``*.yml`` files. A document is
  **claimed** (ours) when, reading its top-level keys in any letter case,

  - its ``apiVersion`` names us: it contains ``konorkestra`` in any case, or
    its API group is within 3 edits of ``konorkestra.io`` (or its first label
    of ``konorkestra``): ``konorkestra.i/v1``, ``Konorkestra.io/v1``; or
  - its ``kind`` is one of ours in any case (``ConfigSet``, ``policy``) and
    its ``apiVersion`` is not **someone else's**.

  An ``apiVersion`` is someone else's when its API group is a DNS name (has a
  dot) that does not name us: ``kyverno.io/v1`` ``Policy``, ``audit.k8s.io/v1``
  ``Policy``, ``user.openshift.io/v1`` ``Group`` are real kinds of other
  projects and stay ignored. A Konorkestra kind with a missing, non-string,
  core (``v1``) or dotless-group (``apps/v1``) ``apiVersion`` is claimed: no
  one else can own that document, so a typo there is an error, never a
  silently dropped definition. Every other document is ignored, and
  :func:`ignored_documents` lists each one (``konorctl validate -v``).
* A claimed document becomes a definition only when ``apiVersion`` is exactly
  ``konorkestra.io/v1``, ``kind`` exactly one of ours, and no top-level key is
  mis-cased; otherwise each problem is an error at its line, with a hint:
  ``api-version`` (another or missing apiVersion, or its key mis-cased),
  ``unknown-kind`` (another kind, a mis-cased kind or ``kind`` key) and
  ``schema`` (``metaData``, ``Spec``).
* A file is parsed only when its bytes mention ``konorkestra`` in any case or
  have a line starting with ``kind:`` (optionally quoted, or after ``---``), or
  a flow-mapping entry ``{kind:``/``, kind:``, naming one of our kinds in any
  case; other files are never parsed, which keeps large repos fast. A
  document escapes this filter only with two mistakes at once (an
  ``apiVersion`` that does not mention us *and* a ``kind`` key indented or
  misspelt).
* A file that is not acceptable YAML is an error when it mentions
  ``konorkestra`` in any case (for a size or limit error: in its first
  64 KiB); otherwise it is not ours and is ignored (a Helm template, say).
* Loading never raises for bad content, only for a missing directory, a
  non-repository or an unknown revision (:class:`RepoError`).
* Every definition keeps its file and the line/column of each of its nodes.
* ``Snapshot.content_keys`` maps a candidate path to a key naming its exact
  content (``git:<blob id>`` for commits; with a cache, ``sha256:<hex>`` for
  work trees). It is what an :class:`~konorkestra.repo.cache.AnalysisCache`
  keys on; a path without a key is simply analyzed without the cache.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

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

_KIND_VALUE = re.compile(rb"""kind["']?[ \t]*:[ \t]*["']?(?:configset|policy|group)\b""")
_OURS = re.compile(rb"(?i)konorkestra")


class ParseCache(Protocol):
    """What loading needs from a cache (:class:`~konorkestra.repo.cache.AnalysisCache` is one):
    declared here so the loader never imports the cache, which imports the loader."""

    def parse(
        self, path: str, content_id: str, source: FileSource
    ) -> tuple[str | None, list[Definition], list[Diagnostic]]:
        """``(content key, definitions, load diagnostics)`` of one candidate file."""
        ...


_TOP_KEYS = ("apiVersion", "kind", "metadata", "spec")
_KEY_CODES = {"apiVersion": "api-version", "kind": "unknown-kind"}
_OUR_KINDS = {kind.lower(): kind for kind in KINDS}
_GROUP = API_VERSION.split("/")[0]
_API_HINT = f"did you mean apiVersion: {API_VERSION}?"


@dataclass(frozen=True)
class Ignored:
    """A document (or a whole file) the loader left alone, and why."""

    file: str
    line: int | None
    kind: str | None = None
    api_version: str | None = None
    reason: str | None = None
    """Set for a whole file: why it was not loaded."""


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
    if not _may_be_ours(data[: MAX_FILE_BYTES + 1].lower()):
        return [], []
    definitions: list[Definition] = []
    diagnostics: list[Diagnostic] = []
    for found in _documents(path, data):
        if isinstance(found, Definition):
            definitions.append(found)
        elif isinstance(found, list):
            diagnostics += found
    return definitions, diagnostics


def _may_be_ours(low: bytes) -> bool:
    """The cheap filter on lower-cased bytes (see the module invariants).

    Literal searches only (``in``, a regex starting with ``kind``): 6,300 files
    of 3 MB take ~17 ms, against ~140 ms for one case-insensitive regex.
    """
    if b"konorkestra" in low:
        return True
    for hit in _KIND_VALUE.finditer(low):
        before = low[low.rfind(b"\n", 0, hit.start()) + 1 : hit.start()].rstrip(b"\"'")
        if before == b"" or before.rstrip(b" \t").endswith((b"---", b"{", b",")):
            return True
    return False


def ignored_documents(source: FileSource) -> Iterator[Ignored]:
    """Every document and file :func:`parse_file` leaves alone, in path order.

    Parses every candidate, filtered or not: meant for ``validate -v``, not
    for the hot path.
    """
    for path, content_id in source.candidates():
        for found in _documents(path, source.read_id(content_id)):
            if isinstance(found, Ignored):
                yield found


def _documents(path: str, data: bytes) -> Iterator[Definition | list[Diagnostic] | Ignored]:
    """Each document of a file judged: a definition, its errors, or ignored."""
    try:
        docs = load_yaml(data)
    except YamlError as exc:
        head = data[:65536] if exc.code == "yaml-limit" else data
        if _OURS.search(head):
            yield [
                Diagnostic.error(exc.code, exc.message, file=path, line=exc.line, column=exc.column)
            ]
        else:
            yield Ignored(path, exc.line, reason=f"{exc.code}: {exc.message}")
        return
    for doc in docs:
        yield _judge(path, doc)


def _judge(path: str, doc: YamlDocument) -> Definition | list[Diagnostic] | Ignored:
    """Apply the claim rules of the module docstring to one document."""
    value = doc.value
    if not isinstance(value, dict):
        return Ignored(path, doc.line)
    keys = {k: k if k in value else _miscased(value, k) for k in _TOP_KEYS}
    api, kind, meta = (value.get(keys[k]) if keys[k] else None for k in _TOP_KEYS[:3])
    ours_kind = _OUR_KINDS.get(kind.lower()) if isinstance(kind, str) else None
    foreign = isinstance(api, str) and "." in _group(api) and not _names_us(api)
    if not (isinstance(api, str) and _names_us(api)) and (ours_kind is None or foreign):
        return Ignored(path, doc.line, _shown(kind), _shown(api))
    name = meta.get("name") if isinstance(meta, dict) else None
    defn = Definition(str(kind), name if isinstance(name, str) else "", path, doc)
    problems = [
        Diagnostic.error(
            _KEY_CODES.get(canonical, "schema"),
            f"key {key!r} must be spelt {canonical!r}",
            hint=_key_hint(canonical, ours_kind),
            **defn.where((key,), key=True),
        )
        for canonical, key in keys.items()
        if key not in (None, canonical)
    ]
    if keys["apiVersion"] in (None, "apiVersion") and api != API_VERSION:
        problems.append(_api_problem(api, kind, defn))
    if keys["kind"] in (None, "kind") and kind not in KINDS and (ours_kind or not problems):
        hint = f"did you mean kind: {ours_kind}?" if ours_kind else None
        message = f"unknown kind {kind!r} for apiVersion {API_VERSION}"
        problems.append(
            Diagnostic.error("unknown-kind", message, hint=hint, **defn.where(("kind",)))
        )
    return problems or defn


def _key_hint(canonical: str, ours_kind: str | None) -> str:
    if canonical == "apiVersion":
        return _API_HINT
    if canonical == "kind" and ours_kind:
        return f"did you mean kind: {ours_kind}?"
    return f"did you mean {canonical}?"


def _api_problem(api: object, kind: object, defn: Definition) -> Diagnostic:
    if api is None:
        message = f"kind {kind!r} has no apiVersion; definitions need {API_VERSION!r}"
        return Diagnostic.error("api-version", message, hint=_API_HINT, **defn.where())
    if isinstance(api, str) and api.startswith(_GROUP + "/"):
        message = f"apiVersion {api!r} is not supported"
    else:
        message = f"apiVersion {api!r} is not {API_VERSION!r}"
    return Diagnostic.error("api-version", message, hint=_API_HINT, **defn.where(("apiVersion",)))


def _miscased(value: dict[str, Any], canonical: str) -> str | None:
    return next((k for k in value if k.lower() == canonical.lower()), None)


def _shown(value: object) -> str | None:
    return None if value is None else value if isinstance(value, str) else repr(value)


def _group(api: str) -> str:
    """``apps/v1`` -> ``apps``; ``v1`` (the Kubernetes core group) -> ``v1``."""
    return api.lower().rpartition("/")[0] or api.lower()


def _names_us(api: str) -> bool:
    group = _group(api)
    return (
        "konorkestra" in api.lower()
        or _within(group, _GROUP, 3)
        or _within(group.split(".")[0], _GROUP.split(".")[0], 3)
    )


def _within(a: str, b: str, limit: int) -> bool:
    """Levenshtein distance of ``a`` and ``b`` is at most ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return False
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1] <= limit


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
    cache: ParseCache | None = None,
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


def load_worktree(path: str | os.PathLike[str], *, cache: ParseCache | None = None) -> Snapshot:
    """Load the definitions below directory ``path``; raise :class:`RepoError` if absent."""
    if not os.path.isdir(path):
        raise RepoError(f"{os.fspath(path)}: no such directory")
    return load_source(WorktreeSource(path), label=os.fspath(path), cache=cache)


def load_commit(
    repo_path: str | os.PathLike[str], rev: str = "HEAD", *, cache: ParseCache | None = None
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
