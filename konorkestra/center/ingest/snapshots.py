"""Load commits for ingest, parsing each definition file once per content.

Invariants:

* The result is exactly :func:`konorkestra.repo.load_commit`'s (same loader,
  same parser); only repeated parsing is skipped.
* The cache key is ``(path, blob id)``: a Git blob id names its content, so an
  unchanged file of a new commit reuses the earlier parse. Definitions are
  immutable, so sharing them between snapshots is safe.
* The cache is bounded (:data:`MAX_ENTRIES`); the oldest entries go first.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from konorkestra.repo.diagnostics import Diagnostic
from konorkestra.repo.loader import Definition, Snapshot, commit_subject, load_source, parse_file
from konorkestra.repo.sources import CommitSource, FileSource, open_repo, resolve_commit

MAX_ENTRIES = 20_000


class SnapshotLoader:
    """``load(sha)`` for one repository path, with a parse cache."""

    def __init__(self, path: Path, label: str) -> None:
        self.path, self.label = path, label
        self._cache: OrderedDict[tuple[str, str], tuple[list[Definition], list[Diagnostic]]]
        self._cache = OrderedDict()

    def _parse(
        self, path: str, content_id: str, source: FileSource
    ) -> tuple[list[Definition], list[Diagnostic]]:
        key = (path, content_id)
        hit = self._cache.get(key)
        if hit is None:
            hit = parse_file(path, source.read_id(content_id))
            self._cache[key] = hit
            if len(self._cache) > MAX_ENTRIES:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return list(hit[0]), list(hit[1])

    def load(self, sha: str) -> Snapshot:
        repo = open_repo(self.path)
        commit = resolve_commit(repo, sha)
        return load_source(
            CommitSource(repo, commit),
            label=f"{self.label}@{sha[:12]}",
            commit=sha,
            subject=commit_subject(commit.message),
            parser=self._parse,
        )
