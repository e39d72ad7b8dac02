"""Read-side queries of releases: Releases, Groups and blobs as the JSON the API returns.

Invariants:

* Pure reads in one connection each; nothing here writes.
* Lists are ordered newest first and limited by ``limit``.
* A Release's JSON never carries its bundle (:data:`RELEASE_COLUMNS`); the
  bundle is read only by :func:`get_release`, as the exact stored bytes.
* "Current" group state is the state as of the latest *accepted* commit;
  rejected commits never change what is served.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.store import schema
from konorkestra.center.store.engine import iso, reader

C, R, G = schema.commits, schema.releases, schema.group_states


def release_json(m: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": m["id"],
        "group": m["group"],
        "sequence": m["sequence"],
        "digest": m["digest"],
        "state": m["state"],
        "commit": m["commit"],
        "configsets": m["configsets"],
        "policy": {k: v for k, v in m["policy"].items() if k in ("name", "digest", "strategy")},
        "previous_id": m["previous_id"],
        "reason": m["reason"],
        "created_by": m["created_by"],
        "created_at": iso(m["created_at"]),
        "expires_at": iso(m["expires_at"]),
    }


RELEASE_COLUMNS = [c for c in R.c if c.name != "bundle"]


def latest_accepted(conn: Connection) -> str | None:
    found = conn.execute(
        sa.select(C.c.sha).where(C.c.status == "accepted").order_by(C.c.seq.desc()).limit(1)
    ).scalar()
    return None if found is None else str(found)


def _latest_releases(conn: Connection, group: str | None = None) -> dict[str, dict[str, Any]]:
    top = sa.select(R.c.group, sa.func.max(R.c.sequence).label("seq")).group_by(R.c.group)
    if group is not None:
        top = top.where(R.c.group == group)
    sub = top.subquery()
    q = sa.select(*RELEASE_COLUMNS).join(
        sub, sa.and_(R.c.group == sub.c.group, R.c.sequence == sub.c.seq)
    )
    return {r._mapping["group"]: release_json(r._mapping) for r in conn.execute(q)}


def list_groups(engine: Engine) -> list[dict[str, Any]]:
    """Groups of the latest accepted commit, plus any group that has releases."""
    with reader(engine).connect() as conn:
        sha = latest_accepted(conn)
        states = {}
        if sha is not None:
            for r in conn.execute(sa.select(G).where(G.c.commit == sha).order_by(G.c.name)):
                states[r._mapping["name"]] = r._mapping
        latest = _latest_releases(conn)
    out = []
    for name in sorted({*states, *latest}):
        st = states.get(name)
        out.append(
            {
                "name": name,
                "defined": st is not None,
                "commit": sha if st is not None else None,
                "policy": None
                if st is None
                else {"name": st["policy"], "digest": st["policy_digest"]},
                "configsets": None if st is None else st["configsets"],
                "latest_release": latest.get(name),
            }
        )
    return out


def get_group(engine: Engine, name: str, *, limit: int = 50) -> dict[str, Any] | None:
    found = [g for g in list_groups(engine) if g["name"] == name]
    if not found:
        return None
    group = found[0]
    group["releases"] = list_releases(engine, group=name, limit=limit)
    return group


def list_releases(
    engine: Engine, *, group: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    q = sa.select(*RELEASE_COLUMNS).order_by(R.c.created_at.desc(), R.c.sequence.desc())
    if group is not None:
        q = q.where(R.c.group == group)
    with reader(engine).connect() as conn:
        return [release_json(r._mapping) for r in conn.execute(q.limit(limit))]


def get_release(engine: Engine, release_id: str) -> tuple[dict[str, Any], bytes] | None:
    with reader(engine).connect() as conn:
        row = conn.execute(sa.select(R).where(R.c.id == release_id)).first()
    if row is None:
        return None
    return release_json(row._mapping), bytes(row._mapping["bundle"])


def get_blob(engine: Engine, digest: str) -> bytes | None:
    with reader(engine).connect() as conn:
        data = conn.execute(
            sa.select(schema.blobs.c.data).where(schema.blobs.c.digest == digest)
        ).scalar()
    return None if data is None else bytes(data)
