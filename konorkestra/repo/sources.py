"""Where repo files come from: a work tree on disk, or a tree in a Git commit.

Example::

    from konorkestra.repo.sources import CommitSource, WorktreeSource, open_repo
    src = WorktreeSource("examples/config-repo")
    [path for path, _ in src.candidates()]   # every *.yaml / *.yml, sorted
    src.read("files/nginx/payments.conf")      # raw bytes

    repo = open_repo("/srv/config.git")
    CommitSource(repo, resolve_commit(repo, "main")).read("groups.yaml")

Invariants:

* Paths are repo-relative POSIX strings. :func:`check_repo_path` is the one
  place deciding which are acceptable: relative, no ``.``/``..``/empty
  segments, nothing under ``.git``.
* A source never reads outside its root: a work-tree symlink resolving outside
  the root is refused, and Git symlinks and submodules are not regular files.
* Hidden directories and files (``.git``, ``.github``, ``.pre-commit-config.yaml``)
  are never definition candidates.
* Commit trees are listed with a cache keyed by tree id, so unchanged subtrees
  of successive commits are walked once (the history check relies on this).
* Git is read with dulwich only; no ``git`` binary is needed. Inside a Git hook,
  quarantined objects (``GIT_OBJECT_DIRECTORY``) are visible, read-only.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from dulwich.errors import NotGitRepository, NotTreeError
from dulwich.objects import Commit, ObjectID, Tree
from dulwich.objectspec import parse_commit
from dulwich.repo import Repo

YAML_SUFFIXES = (".yaml", ".yml")
_SYMLINK, _SUBMODULE = 0o120000, 0o160000


class RepoError(Exception):
    """A usage problem: not a Git repository, or a revision that does not exist."""


class SourceError(LookupError):
    """A repo file cannot be read; ``code`` is ``file-missing`` or ``file-path``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def check_repo_path(path: str) -> str | None:
    """Return why ``path`` is not an acceptable repo-relative path, or None."""
    if path.startswith("/") or (len(path) > 1 and path[1] == ":") or path.startswith("\\"):
        return f"{path!r} is absolute; paths are relative to the repo root"
    parts = path.split("/")
    if ".." in parts:
        return f"{path!r} escapes the repository ('..' is not allowed)"
    if "\\" in path or any(p in ("", ".") for p in parts):
        return f"{path!r} is not a normalized POSIX path (no '\\', './', '//' or trailing '/')"
    if parts[0] == ".git":
        return f"{path!r} points into .git"
    return None


def _hidden(name: str) -> bool:
    return name.startswith(".")


class FileSource(Protocol):
    """Read-only access to the files of one snapshot of a repo."""

    def candidates(self) -> Iterator[tuple[str, str]]:
        """Yield ``(path, content id)`` of every visible YAML file, sorted by path."""
        ...

    def read(self, path: str) -> bytes:
        """Raw bytes of the regular file at ``path``; raise :class:`SourceError`."""
        ...

    def read_id(self, content_id: str) -> bytes:
        """Raw bytes of a candidate by the id :meth:`candidates` gave."""
        ...


class WorktreeSource:
    """Files of a directory on disk."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._real_root = self.root.resolve()

    def candidates(self) -> Iterator[tuple[str, str]]:
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not _hidden(d)]
            rel = Path(dirpath).relative_to(self.root)
            found += [
                (rel / f).as_posix()
                for f in filenames
                if f.endswith(YAML_SUFFIXES) and not _hidden(f)
            ]
        for path in sorted(found):
            yield path, path

    def read_id(self, content_id: str) -> bytes:
        return (self.root / content_id).read_bytes()

    def read(self, path: str) -> bytes:
        problem = check_repo_path(path)
        if problem:
            raise SourceError("file-path", problem)
        full = self.root / path
        real = full.resolve()
        if not real.is_relative_to(self._real_root):
            raise SourceError("file-path", f"{path!r} is a symlink pointing outside the repo")
        try:
            if not stat.S_ISREG(real.stat().st_mode):
                raise SourceError("file-missing", f"{path!r} is not a regular file")
            return real.read_bytes()
        except OSError:
            raise SourceError("file-missing", f"{path!r} does not exist") from None


class TreeLister:
    """Reads Git trees with caches keyed by tree id, shared across commits.

    Unchanged subtrees of successive commits have the same id, so walking a long
    history touches each distinct tree once.
    """

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self._trees: dict[bytes, Tree] = {}
        self._candidates: dict[bytes, list[tuple[str, str]]] = {}
        self._lookups: dict[tuple[bytes, str], tuple[int, bytes] | None] = {}

    def tree(self, tree_id: bytes) -> Tree:
        tree = self._trees.get(tree_id)
        if tree is None:
            obj = self.repo.object_store[ObjectID(tree_id)]
            if not isinstance(obj, Tree):
                raise NotTreeError(tree_id)
            tree = self._trees[tree_id] = obj
        return tree

    def candidates(self, tree_id: bytes) -> list[tuple[str, str]]:
        cached = self._candidates.get(tree_id)
        if cached is not None:
            return cached
        out: list[tuple[str, str]] = []
        for entry in self.tree(tree_id).iteritems():
            name = entry.path.decode("utf-8", "surrogateescape")
            if _hidden(name):
                continue
            if stat.S_ISDIR(entry.mode):
                out += [(f"{name}/{p}", sha) for p, sha in self.candidates(entry.sha)]
            elif stat.S_ISREG(entry.mode) and name.endswith(YAML_SUFFIXES):
                out.append((name, entry.sha.decode("ascii")))
        out.sort()
        self._candidates[tree_id] = out
        return out

    def lookup(self, tree_id: bytes, path: str) -> tuple[int, bytes] | None:
        """``(mode, sha)`` of ``path`` below tree ``tree_id``, or None."""
        key = (tree_id, path)
        if key in self._lookups:
            return self._lookups[key]
        head, _, rest = path.partition("/")
        found: tuple[int, bytes] | None = None
        tree, name = self.tree(tree_id), head.encode()
        if name in tree:  # a dict lookup, not a scan: one lookup per ConfigSet file
            mode, sha = tree[name]
            if not rest:
                found = (mode, sha)
            elif stat.S_ISDIR(mode):
                found = self.lookup(sha, rest)
        self._lookups[key] = found
        return found


class CommitSource:
    """Files of one Git commit, read through dulwich."""

    def __init__(self, repo: Repo, commit: Commit, lister: TreeLister | None = None) -> None:
        self.repo, self.commit = repo, commit
        self.tree_id: bytes = commit.tree
        self.lister = lister or TreeLister(repo)

    def candidates(self) -> Iterator[tuple[str, str]]:
        yield from self.lister.candidates(self.tree_id)

    def blob_id(self, path: str) -> str:
        """The Git blob id of the regular file at ``path``; raise :class:`SourceError`."""
        problem = check_repo_path(path)
        if problem:
            raise SourceError("file-path", problem)
        found = self.lister.lookup(self.tree_id, path)
        if found is None:
            raise SourceError("file-missing", f"{path!r} does not exist in the commit")
        mode, sha = found
        if mode in (_SYMLINK, _SUBMODULE) or not stat.S_ISREG(mode):
            raise SourceError("file-missing", f"{path!r} is not a regular file in the commit")
        return sha.decode("ascii")

    def read_id(self, content_id: str) -> bytes:
        data: bytes = self.repo.object_store[ObjectID(content_id.encode("ascii"))].as_raw_string()
        return data

    def read(self, path: str) -> bytes:
        return self.read_id(self.blob_id(path))


def open_repo(path: str | os.PathLike[str]) -> Repo:
    """Open the Git repository (bare or not) at exactly ``path``."""
    if not os.path.isdir(path):
        raise RepoError(f"{os.fspath(path)}: no such directory")
    kwargs: dict[str, object] = {}
    git_dir = os.environ.get("GIT_DIR")
    if git_dir and os.path.realpath(git_dir) in _control_dirs(path):
        # Inside a hook (pre-receive): new objects sit in a quarantine directory.
        if os.environ.get("GIT_OBJECT_DIRECTORY"):
            kwargs["object_directory"] = os.environ["GIT_OBJECT_DIRECTORY"]
        alternates = os.environ.get("GIT_ALTERNATE_OBJECT_DIRECTORIES", "")
        if alternates:
            kwargs["alternates"] = [p for p in alternates.split(os.pathsep) if p]
    try:
        return Repo(os.fspath(path), **kwargs)  # type: ignore[arg-type]
    except NotGitRepository:
        raise RepoError(f"{os.fspath(path)}: not a Git repository") from None


def _control_dirs(path: str | os.PathLike[str]) -> set[str]:
    real = os.path.realpath(path)
    return {real, os.path.join(real, ".git")}


_REVISION = re.compile(r"(?P<base>.+?)(?P<suffix>(?:[~^][0-9]*)*)")
_STEP = re.compile(r"([~^])([0-9]*)")


def resolve_commit(repo: Repo, rev: str) -> Commit:
    """The commit ``rev`` names: a sha, short sha, branch, tag or ``HEAD``, followed by any
    number of ``~N`` (the N-th first-parent ancestor; ``~`` is ``~1``) and ``^N`` (the N-th
    parent; ``^`` is ``^1``, ``^0`` the commit itself), applied left to right as ``git
    rev-parse`` does (dulwich's ``parse_commit`` knows no suffixes). Git ref names cannot
    contain ``~`` or ``^``, so the split is never ambiguous. An unknown name, or a walk past
    a root or to a parent that does not exist, is a :class:`RepoError`."""
    match = _REVISION.fullmatch(rev)
    if match is None:
        raise RepoError(f"{rev!r}: unknown revision")
    commit = _named_commit(repo, match["base"], rev)
    for kind, digits in _STEP.findall(match["suffix"]):
        count = int(digits) if digits else 1
        if kind == "~":
            for _ in range(count):
                commit = _parent(repo, commit, 1, rev)
        elif count:
            commit = _parent(repo, commit, count, rev)
    return commit


def _named_commit(repo: Repo, name: str, rev: str) -> Commit:
    try:
        commit = parse_commit(repo, name)
    except (KeyError, ValueError, NotImplementedError):
        raise RepoError(f"{rev!r}: unknown revision") from None
    if not isinstance(commit, Commit):
        raise RepoError(f"{rev!r} does not name a commit")
    return commit


def _parent(repo: Repo, commit: Commit, index: int, rev: str) -> Commit:
    if index < 1 or index > len(commit.parents):
        raise RepoError(f"{rev!r}: unknown revision (no such parent)")
    parent = repo.object_store[commit.parents[index - 1]]
    if not isinstance(parent, Commit):
        raise RepoError(f"{rev!r}: unknown revision")
    return parent


def has_commits(repo: Repo) -> bool:
    """False for a freshly initialised repository whose HEAD is unborn."""
    try:
        repo.head()
    except KeyError:
        return False
    return True
