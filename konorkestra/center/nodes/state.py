"""A node's view, folded from what it reported: per Group the applied Release,
staleness, the last refusal and the processes that took the config.

Example::

    node_state(engine, node_id, ["checkout"])["state"]   # per group: applied, processes

Invariants:

* The view folds the newest rows only (:data:`VIEW_ROWS`), oldest first, so
  reading a node stays cheap however long it has been reporting.
* Per Group the applied Release shown is the one of the highest sequence (the
  newest of equals); ``stale`` and ``refused`` are the newest of their kind; a
  process (pid, start time) shows its newest delivery and ack.
* Every Group of ``groups`` appears, reported or not; rows without a Group
  (errors, drops) are not part of the view.
* Rows older than the Center's report retention are deleted by
  :mod:`konorkestra.center.store.retention`, except those this view needs.
* Read-only: one read connection, no write lock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.store import schema
from konorkestra.center.store.engine import iso, reader

NR = schema.node_reports


VIEW_ROWS = 5000


def _epoch(value: object) -> str | None:
    if not isinstance(value, int | float) or not value:
        return None
    return iso(dt.datetime.fromtimestamp(float(value), dt.UTC))


def node_state(engine: Engine, node_id: str, groups: list[str] | None = None) -> dict[str, Any]:
    """``{"state": [per group: applied release, stale, last refusal, processes]}``.

    Folds the node's newest :data:`VIEW_ROWS` report rows, oldest first.
    """
    with reader(engine).connect() as conn:  # read-only: no write lock
        rows = conn.execute(
            sa.select(NR.c.id, NR.c.kind, NR.c.group, NR.c.body)
            .where(NR.c.node_id == node_id)
            .order_by(NR.c.id.desc())
            .limit(VIEW_ROWS)
        ).all()
    per: dict[str, dict[str, Any]] = {}

    def entry(group: str) -> dict[str, Any]:
        return per.setdefault(
            group,
            {"group": group, "applied": None, "stale": None, "refused": None, "processes": {}},
        )

    for _id, kind, group, body in reversed(rows):
        if group is None:
            continue
        e = entry(group)
        if kind == "applied":
            if e["applied"] is None or body["sequence"] >= e["applied"]["sequence"]:
                e["applied"] = {"release": body["release"], "sequence": body["sequence"],
                                "at": _epoch(body.get("at"))}  # fmt: skip
        elif kind == "stale":
            e["stale"] = body["stale"]
        elif kind == "refused":
            e["refused"] = {k: body.get(k) for k in ("release", "sequence", "code", "reason")}
            e["refused"]["at"] = _epoch(body.get("at"))
        elif kind in ("delivery", "ack"):
            proc = body["process"]
            key = (proc["pid"], proc.get("start_time"))
            p = e["processes"].setdefault(
                key, {**proc, "client": body.get("client"), "release": None, "sequence": None,
                      "seen_at": None, "via": None, "ack": None},
            )  # fmt: skip
            if body.get("client"):
                p["client"] = body["client"]
            if kind == "delivery":
                p.update(release=body["release"], sequence=body["sequence"], via=body["via"],
                         seen_at=_epoch(body.get("at")))  # fmt: skip
            else:
                p["ack"] = {"release": body["release"], "status": body["status"],
                            "error": body.get("error"), "at": _epoch(body.get("at"))}  # fmt: skip
    for g in groups or ():
        entry(g)
    state = []
    for group in sorted(per):
        e = per[group]
        e["processes"] = sorted(e["processes"].values(), key=lambda p: (p["pid"], p["exe"] or ""))
        state.append(e)
    return {"state": state}
