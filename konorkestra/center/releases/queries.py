"""Read-side queries of releases: Releases, Groups and blobs, as model types.

Example::

    releases = list_releases(engine, group="checkout", limit=10)   # list[Release]
    [r.to_json() for r in releases]                                 # what the route answers

Invariants:

* Pure reads in one connection each; nothing here writes.
* Rows become model types at :mod:`konorkestra.center.releases.rows`; what
  leaves this module is a :class:`~konorkestra.model.release.Release` or a
  :class:`~konorkestra.center.releases.rows.GroupView`, and the routes turn
  it into JSON with ``.to_json()``.
* Lists are ordered newest first and limited by ``limit``.
* A Release never carries its bundle (:data:`~konorkestra.center.releases.rows.RELEASE_COLUMNS`);
  the bundle is read only by :func:`get_release`, as the exact stored bytes.
* "Current" group state is the state as of the latest *accepted* commit;
  rejected commits never change what is served.
"""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.releases.rows import (
    RELEASE_COLUMNS,
    GroupView,
    group_from_row,
    release_from_row,
)
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.model.release import Release
from konorkestra.model.types import GroupName, ReleaseId

C, R, G = schema.commits, schema.releases, schema.group_states


def latest_accepted(conn: Connection) -> str | None:
    found = conn.execute(
        sa.select(C.c.sha).where(C.c.status == "accepted").order_by(C.c.seq.desc()).limit(1)
    ).scalar()
    return None if found is None else str(found)


def latest_releases(conn: Connection, group: str | None = None) -> dict[GroupName, Release]:
    """The newest Release of each Group (of ``group`` only, if given)."""
    top = sa.select(R.c.group, sa.func.max(R.c.sequence).label("seq")).group_by(R.c.group)
    if group is not None:
        top = top.where(R.c.group == group)
    sub = top.subquery()
    q = sa.select(*RELEASE_COLUMNS).join(
        sub, sa.and_(R.c.group == sub.c.group, R.c.sequence == sub.c.seq)
    )
    releases = (release_from_row(r._mapping) for r in conn.execute(q))
    return {r.group: r for r in releases}


def list_groups(engine: Engine) -> list[GroupView]:
    """Groups of the latest accepted commit, plus any group that has releases."""
    with reader(engine).connect() as conn:
        sha = latest_accepted(conn)
        defined: dict[GroupName, GroupView] = {}
        if sha is not None:
            for r in conn.execute(sa.select(G).where(G.c.commit == sha).order_by(G.c.name)):
                group = group_from_row(r._mapping)
                defined[group.name] = group
        latest = latest_releases(conn)
    return [
        replace(defined.get(name) or GroupView(name), latest_release=latest.get(name))
        for name in sorted({*defined, *latest})
    ]


def get_group(engine: Engine, name: str, *, limit: int = 50) -> GroupView | None:
    """One Group as :func:`list_groups` sees it, with its newest ``limit`` Releases."""
    found = [g for g in list_groups(engine) if g.name == name]
    if not found:
        return None
    return replace(found[0], releases=tuple(list_releases(engine, group=name, limit=limit)))


def list_releases(engine: Engine, *, group: str | None = None, limit: int = 100) -> list[Release]:
    q = sa.select(*RELEASE_COLUMNS).order_by(R.c.created_at.desc(), R.c.sequence.desc())
    if group is not None:
        q = q.where(R.c.group == group)
    with reader(engine).connect() as conn:
        return [release_from_row(r._mapping) for r in conn.execute(q.limit(limit))]


def get_release(engine: Engine, release_id: ReleaseId | str) -> tuple[Release, bytes] | None:
    """The Release ``release_id`` and its bundle, the exact stored bytes."""
    with reader(engine).connect() as conn:
        row = conn.execute(sa.select(R).where(R.c.id == release_id)).first()
    if row is None:
        return None
    return release_from_row(row._mapping), bytes(row._mapping["bundle"])


def get_blob(engine: Engine, digest: str) -> bytes | None:
    with reader(engine).connect() as conn:
        data = conn.execute(
            sa.select(schema.blobs.c.data).where(schema.blobs.c.digest == digest)
        ).scalar()
    return None if data is None else bytes(data)
