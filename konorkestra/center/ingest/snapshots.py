"""Load commits for ingest through one long-lived :class:`~konorkestra.repo.AnalysisCache`.

Invariants:

* The result is exactly :func:`konorkestra.repo.load_commit`'s (same loader,
  same parser); the cache only skips repeated work for unchanged files.
* The loader owns the cache and the processor analyzes through the same one,
  so a commit changing 20 of 2,000 files parses and checks about 20 files.
  The cache is keyed by ``(path, blob id)`` and bounded (see
  :mod:`konorkestra.repo.cache`); there is no hidden global state.
"""

from __future__ import annotations

from pathlib import Path

from konorkestra.repo.cache import AnalysisCache
from konorkestra.repo.loader import Snapshot, commit_subject, load_source
from konorkestra.repo.sources import CommitSource, open_repo, resolve_commit


class SnapshotLoader:
    """``load(sha)`` for one repository path, parsing through :attr:`cache`."""

    def __init__(self, path: Path, label: str, cache: AnalysisCache | None = None) -> None:
        self.path, self.label = path, label
        self.cache = cache if cache is not None else AnalysisCache()

    def load(self, sha: str) -> Snapshot:
        repo = open_repo(self.path)
        commit = resolve_commit(repo, sha)
        return load_source(
            CommitSource(repo, commit),
            label=f"{self.label}@{sha[:12]}",
            commit=sha,
            subject=commit_subject(commit.message),
            cache=self.cache,
        )
