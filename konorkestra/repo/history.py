"""What every ``name@version`` was when first published on a branch.

Example::

    from konorkestra.repo import history_before, load_commit, validate
    history = history_before("/srv/config.git", "main")
    history["checkout-api@3"]            # Published(digest, commit, subject)
    validate(load_commit("/srv/config.git", "main"), history=history)

Invariants:

* History follows first parents only, from the root commit forwards; the
  first commit in which a ``name@version`` appears defines it forever.
* The walk is linear in history and reuses work: commits with an unchanged
  root tree are skipped, trees are listed once per tree id, each definition
  file is parsed once per ``(path, blob id)``, and a ConfigSet digest is
  computed once per (file, blob, document, blob ids of its schema and files).
* Commits whose definitions are broken are not errors here: broken
  ConfigSets are simply not recorded (validation judged them back then).
* An unborn ``HEAD`` (a repository with no commits yet) has empty history.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from dulwich.objects import Commit, ObjectID
from dulwich.repo import Repo

from konorkestra.model.types import Digest
from konorkestra.repo.configsets import build_configset, dependencies
from konorkestra.repo.loader import Definition, commit_subject, parse_file
from konorkestra.repo.schemas import schema_diagnostics
from konorkestra.repo.sources import (
    CommitSource,
    SourceError,
    TreeLister,
    has_commits,
    open_repo,
    resolve_commit,
)


@dataclass(frozen=True)
class Published:
    """The content a ``name@version`` was first published with."""

    digest: Digest
    commit: str
    subject: str

    @property
    def short(self) -> str:
        return self.commit[:7]


@dataclass
class HistoryStats:
    commits: int = 0
    trees: int = 0
    files_parsed: int = 0
    digests_computed: int = 0


@dataclass(frozen=True, eq=False)
class History(Mapping[str, Published]):
    """``name@version`` -> :class:`Published`, from earlier commits."""

    entries: dict[str, Published] = field(default_factory=dict)
    stats: HistoryStats = field(default_factory=HistoryStats, compare=False)

    def __getitem__(self, key: str) -> Published:
        return self.entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


_DigestKey = tuple[str, str, int, tuple[str, ...]]


class _Walker:
    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.lister = TreeLister(repo)
        self.parsed: dict[tuple[str, str], list[Definition]] = {}
        self.digests: dict[_DigestKey, Digest | None] = {}
        self.history = History()

    def configsets(self, path: str, blob: str, source: CommitSource) -> list[Definition]:
        cached = self.parsed.get((path, blob))
        if cached is None:
            self.history.stats.files_parsed += 1
            defs, _ = parse_file(path, source.read_id(blob))
            cached = [d for d in defs if d.kind == "ConfigSet" and not schema_diagnostics(d)]
            self.parsed[(path, blob)] = cached
        return cached

    def dep_id(self, source: CommitSource, path: str) -> str:
        try:
            return source.blob_id(path)
        except SourceError as exc:
            return "!" + exc.code

    def visit(self, commit: Commit) -> None:
        source = CommitSource(self.repo, commit, self.lister)
        sha, subject = commit.id.decode("ascii"), commit_subject(commit.message)
        self.history.stats.trees += 1
        for path, blob in source.candidates():
            for defn in self.configsets(path, blob, source):
                deps = tuple(self.dep_id(source, d) for d in dependencies(defn))
                key = (path, blob, defn.doc.index, deps)
                if key not in self.digests:
                    self.history.stats.digests_computed += 1
                    built = build_configset(defn, source).configset
                    self.digests[key] = built.digest() if built else None
                digest = self.digests[key]
                if digest is not None:
                    name_version = f"{defn.name}@{defn.value['metadata']['version']}"
                    self.history.entries.setdefault(name_version, Published(digest, sha, subject))

    def walk(self, start: Commit | None) -> History:
        chain: list[Commit] = []
        while start is not None:
            chain.append(start)
            parents = start.parents
            obj = self.repo.object_store[ObjectID(parents[0])] if parents else None
            start = obj if isinstance(obj, Commit) else None
        previous_tree = None
        for commit in reversed(chain):
            self.history.stats.commits += 1
            if commit.tree != previous_tree:
                self.visit(commit)
            previous_tree = commit.tree
        return self.history


def _history(repo_path: str | os.PathLike[str], rev: str, *, include_rev: bool) -> History:
    repo = open_repo(repo_path)
    if rev == "HEAD" and not has_commits(repo):
        return History()
    commit = resolve_commit(repo, rev)
    start: Commit | None = commit
    if not include_rev:
        parent = repo.object_store[ObjectID(commit.parents[0])] if commit.parents else None
        start = parent if isinstance(parent, Commit) else None
    return _Walker(repo).walk(start)


def history_before(repo_path: str | os.PathLike[str], rev: str = "HEAD") -> History:
    """History of the first-parent ancestors of ``rev``, excluding ``rev`` itself."""
    return _history(repo_path, rev, include_rev=False)


def history_through(repo_path: str | os.PathLike[str], rev: str = "HEAD") -> History:
    """History of ``rev`` and its first-parent ancestors."""
    return _history(repo_path, rev, include_rev=True)
