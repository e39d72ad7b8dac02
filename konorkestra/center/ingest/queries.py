"""Read-side queries of ingest: commits as the JSON ``/v1/commits`` returns.

Invariants:

* Pure reads in one connection each; nothing here writes.
* Lists are ordered newest first and paginated with ``limit`` and an exclusive
  ``before`` cursor (the commit's ``seq``).
* A commit is found by its full sha or a unique prefix; an ambiguous prefix
  finds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.releases.queries import RELEASE_COLUMNS, release_json
from konorkestra.center.store import schema
from konorkestra.center.store.engine import iso, reader

C, R = schema.commits, schema.releases


def commit_json(m: Mapping[Any, Any], *, full: bool = False) -> dict[str, Any]:
    out = {
        "seq": m["seq"],
        "sha": m["sha"],
        "parent": m["parent"],
        "branch": m["branch"],
        "author": m["author"],
        "committed_at": iso(m["committed_at"]),
        "subject": m["subject"],
        "status": m["status"],
        "ingested_at": iso(m["ingested_at"]),
        "errors": sum(1 for d in m["diagnostics"] if d.get("severity") == "error"),
    }
    if full:
        out["diagnostics"] = m["diagnostics"]
    return out


def list_commits(engine: Engine, *, limit: int, before: int | None = None) -> list[dict[str, Any]]:
    q = sa.select(C).order_by(C.c.seq.desc()).limit(limit)
    if before is not None:
        q = q.where(C.c.seq < before)
    with reader(engine).connect() as conn:
        return [commit_json(r._mapping) for r in conn.execute(q)]


def get_commit(engine: Engine, sha: str) -> dict[str, Any] | None:
    """A commit by full sha or unique prefix (at least 4 hex chars), with its releases."""
    with reader(engine).connect() as conn:
        rows = conn.execute(sa.select(C).where(C.c.sha.startswith(sha)).limit(2)).all()
        if len(rows) != 1:
            return None
        out = commit_json(rows[0]._mapping, full=True)
        rels = conn.execute(
            sa.select(*RELEASE_COLUMNS).where(R.c.commit == out["sha"]).order_by(R.c.group)
        )
        out["releases"] = [release_json(r._mapping) for r in rels]
    return out
