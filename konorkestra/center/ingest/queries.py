"""Read-side queries of ingest: commits as :class:`CommitRecord`, for ``/v1/commits``.

Example::

    record = get_commit(engine, "3f2a")      # by unique prefix; None if ambiguous
    record.to_json(full=True)                # what GET /v1/commits/{sha} answers

Invariants:

* Pure reads in one connection each; nothing here writes.
* Rows become model types here: a ``commits`` row is a :class:`CommitRecord`,
  its Releases are :class:`~konorkestra.model.release.Release` (read through
  :func:`~konorkestra.center.releases.rows.release_from_row`); the route makes
  JSON with ``.to_json()``.
* Lists are ordered newest first and paginated with ``limit`` and an exclusive
  ``before`` cursor (the commit's ``seq``).
* A commit is found by its full sha or a unique prefix; an ambiguous prefix
  finds nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping

from konorkestra.center.releases.rows import RELEASE_COLUMNS, release_from_row
from konorkestra.center.store import schema
from konorkestra.center.store.engine import iso, reader, utc
from konorkestra.model.release import Release
from konorkestra.model.types import JsonObject

C, R = schema.commits, schema.releases


@dataclass(frozen=True)
class CommitRecord:
    """One ingested commit and the Center's verdict on it.

    ``diagnostics`` are stored as the validator wrote them (JSON objects with at
    least ``severity``); ``releases`` are the Releases the commit made, by Group,
    and are only read for one commit (:func:`get_commit`).
    """

    seq: int
    sha: str
    parent: str | None
    branch: str
    author: str
    committed_at: dt.datetime | None
    subject: str
    status: str
    ingested_at: dt.datetime | None
    diagnostics: tuple[JsonObject, ...]
    releases: tuple[Release, ...] | None = None

    @property
    def errors(self) -> int:
        """How many of the diagnostics are errors."""
        return sum(1 for d in self.diagnostics if d.get("severity") == "error")

    @property
    def first_diagnostic(self) -> JsonObject | None:
        """The first error among the diagnostics, else the first diagnostic, else None:
        what a list shows of why a commit was rejected."""
        errors = [d for d in self.diagnostics if d.get("severity") == "error"]
        first = errors or self.diagnostics
        return first[0] if first else None

    def to_json(self, *, full: bool = False) -> JsonObject:
        """``/v1/commits`` JSON; ``full`` adds the diagnostics (and the Releases, if read).

        Every answer has ``first_diagnostic`` (:attr:`first_diagnostic`, as stored)
        and ``diagnostics_count``, so a list can show why without a request per commit."""
        out: JsonObject = {
            "seq": self.seq,
            "sha": self.sha,
            "parent": self.parent,
            "branch": self.branch,
            "author": self.author,
            "committed_at": iso(self.committed_at),
            "subject": self.subject,
            "status": self.status,
            "ingested_at": iso(self.ingested_at),
            "errors": self.errors,
            "diagnostics_count": len(self.diagnostics),
            "first_diagnostic": self.first_diagnostic,
        }
        if full:
            out["diagnostics"] = list(self.diagnostics)
            if self.releases is not None:
                out["releases"] = [r.to_json() for r in self.releases]
        return out


def commit_from_row(m: RowMapping) -> CommitRecord:
    """A ``commits`` row as a :class:`CommitRecord` (without its Releases)."""
    diagnostics = m["diagnostics"]
    if not isinstance(diagnostics, list) or not all(isinstance(d, dict) for d in diagnostics):
        raise ValueError(f"commit {m['sha']}: stored diagnostics are not a list of objects")
    parent = m["parent"]
    return CommitRecord(
        seq=int(m["seq"]),
        sha=str(m["sha"]),
        parent=None if parent is None else str(parent),
        branch=str(m["branch"]),
        author=str(m["author"]),
        committed_at=utc(m["committed_at"]),
        subject=str(m["subject"]),
        status=str(m["status"]),
        ingested_at=utc(m["ingested_at"]),
        diagnostics=tuple(diagnostics),
    )


def list_commits(
    engine: Engine, *, limit: int, before: int | None = None, status: str | None = None
) -> list[CommitRecord]:
    """Newest first, older than ``before`` (a ``seq``); only ``status`` ones, if given."""
    q = sa.select(C).order_by(C.c.seq.desc()).limit(limit)
    if before is not None:
        q = q.where(C.c.seq < before)
    if status is not None:
        q = q.where(C.c.status == status)
    with reader(engine).connect() as conn:
        return [commit_from_row(r._mapping) for r in conn.execute(q)]


def get_commit(engine: Engine, sha: str) -> CommitRecord | None:
    """A commit by full sha or unique prefix (at least 4 hex chars), with its Releases."""
    with reader(engine).connect() as conn:
        rows = conn.execute(sa.select(C).where(C.c.sha.startswith(sha)).limit(2)).all()
        if len(rows) != 1:
            return None
        commit = commit_from_row(rows[0]._mapping)
        rels = conn.execute(
            sa.select(*RELEASE_COLUMNS).where(R.c.commit == commit.sha).order_by(R.c.group)
        )
        releases = tuple(release_from_row(r._mapping) for r in rels)
    return replace(commit, releases=releases)
