"""Git ingest: watch or fetch a repository, validate each new commit, release.

Example::

    from konorkestra.center.ingest import build_ingest
    service = build_ingest(engine, releaser, metrics, repo="/srv/config.git",
                           branch="main", mirror=data / "mirror.git")
    ctx = CenterContext(..., ingest=service, services=[service])
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from konorkestra.center.app.metrics import CenterMetrics
from konorkestra.center.ingest.gitsource import GitSource
from konorkestra.center.ingest.process import CommitProcessor
from konorkestra.center.ingest.snapshots import SnapshotLoader
from konorkestra.center.ingest.worker import IngestService
from konorkestra.center.releases.signer import Releaser
from konorkestra.center.store.leader import INGEST_LOCK, LeaderLock


def build_ingest(
    engine: Engine,
    releaser: Releaser,
    metrics: CenterMetrics,
    *,
    repo: str,
    branch: str,
    mirror: Path,
    poll_interval: float | None = None,
    watch: bool = True,
) -> IngestService:
    """An ingest service for ``repo`` (a path or a URL); raises :class:`SourceUnavailable`."""
    source = GitSource.open(repo, branch=branch, mirror=mirror)
    processor = CommitProcessor(
        engine, releaser, SnapshotLoader(source.path, source.label), branch=branch
    )
    if poll_interval is None:
        poll_interval = 10.0 if source.url else 30.0
    leader = None  # a single Center (SQLite) always ingests
    if engine.dialect.name == "postgresql":  # replicas may share the store: one leader ingests
        leader = LeaderLock(engine, INGEST_LOCK, what="Git ingest")
    return IngestService(
        source, processor, metrics, poll_interval=poll_interval, watch=watch, leader=leader
    )
