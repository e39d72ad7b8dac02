"""What the dashboard's commits pages show: ingested commits, their verdicts and Releases.

Example::

    page = load_commits(engine, status="rejected", before=None)   # newest first
    [(c.record.sha, c.record.status, [r.id for r in c.releases]) for c in page.commits]
    page.next_before          # the cursor of the next (older) page, or None
    [d.where for d in page.commits[0].diagnostics]   # "groups/broken.yaml:7:11"
    load_commit(engine, "3f2a")                      # one commit, every diagnostic

Invariants:

1. Two queries per list page, whatever its length: the commits (through
   :func:`konorkestra.center.ingest.queries.list_commits`, one more than shown
   to know whether an older page exists) and the Releases they made (one
   ``IN``). Pages are :data:`PER_PAGE` commits, paged by the ``seq`` cursor.
2. A commit's Releases are those its ingest created (``created_by`` is the
   ingest's actor), not the manual or rollback Releases that later name it as
   their source, so "this commit released X" stays true.
3. A diagnostic reads as ``konorctl commits show`` prints it: ``file:line:col``
   (:func:`konorkestra.repo.diagnostics.location`), severity, message, ``[code]``
   and its hint; stored diagnostics are JSON as the validator wrote them, and
   a field that is missing or not text is shown empty, never an error.
4. The list shows at most :data:`DIAGNOSTICS_SHOWN` diagnostics per commit and
   says how many more there are; the commit's own page shows all of them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.ingest.process import ACTOR
from konorkestra.center.ingest.queries import CommitRecord, get_commit, list_commits
from konorkestra.center.releases.rows import RELEASE_COLUMNS, release_from_row
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.model.release import Release
from konorkestra.model.types import JsonObject
from konorkestra.repo.diagnostics import location

R = schema.releases
PER_PAGE = 25
"""Commits on one list page."""
DIAGNOSTICS_SHOWN = 5
"""Diagnostics shown per commit in the list (rule 4)."""
STATUSES = ("accepted", "rejected")
"""The verdicts a commit can have, and the list's filter values."""


@dataclass(frozen=True)
class DiagnosticView:
    """One diagnostic as the CLI prints it (rule 3)."""

    where: str
    severity: str
    code: str
    message: str
    hint: str


def diagnostic_view(d: JsonObject) -> DiagnosticView:
    """A stored diagnostic (:meth:`~konorkestra.repo.diagnostics.Diagnostic.to_dict`) for a page."""

    def text(key: str) -> str:
        value = d.get(key)
        return value if isinstance(value, str) else ""

    return DiagnosticView(
        location(d), text("severity") or "error", text("code"), text("message"), text("hint")
    )


@dataclass(frozen=True)
class CommitView:
    """A commit, its diagnostics (all, or the first few) and the Releases it made."""

    record: CommitRecord
    diagnostics: tuple[DiagnosticView, ...]
    more: int
    """How many diagnostics are not in :attr:`diagnostics` (rule 4)."""
    releases: tuple[Release, ...]


@dataclass(frozen=True)
class CommitsPage:
    commits: tuple[CommitView, ...]
    next_before: int | None
    """The ``before`` cursor of the next, older page; ``None`` on the last page."""


def view_of(record: CommitRecord, releases: tuple[Release, ...], shown: int | None) -> CommitView:
    """Pure: the page's view of one commit, with at most ``shown`` diagnostics."""
    views = tuple(diagnostic_view(d) for d in record.diagnostics)
    cut = views if shown is None else views[:shown]
    return CommitView(record, cut, len(views) - len(cut), releases)


def load_commits(engine: Engine, *, status: str | None, before: int | None) -> CommitsPage:
    """One list page, newest first (rule 1: two queries)."""
    records = list_commits(engine, limit=PER_PAGE + 1, before=before, status=status)
    more = len(records) > PER_PAGE
    records = records[:PER_PAGE]
    made: defaultdict[str, list[Release]] = defaultdict(list)
    if records:
        with reader(engine).connect() as conn:
            rows = conn.execute(
                sa.select(*RELEASE_COLUMNS)
                .where(R.c.commit.in_([r.sha for r in records]), R.c.created_by == ACTOR)
                .order_by(R.c.group)
            )
            for row in rows:
                release = release_from_row(row._mapping)
                made[str(release.commit)].append(release)
    views = tuple(view_of(r, tuple(made[r.sha]), DIAGNOSTICS_SHOWN) for r in records)
    return CommitsPage(views, records[-1].seq if more else None)


def load_commit(engine: Engine, sha: str) -> CommitView | None:
    """One commit by full sha or unique prefix, with all its diagnostics (rule 2, 4)."""
    record = get_commit(engine, sha)
    if record is None:
        return None
    releases = tuple(r for r in record.releases or () if r.created_by == ACTOR)
    return view_of(record, releases, None)
