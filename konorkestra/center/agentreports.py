"""What agents report, stored in ``node_reports``, and the per-node view built from it.

Example::

    report = parse_report(await json_body(request))          # ValueError on bad input
    await db(store_report, engine, node_id, report)           # rows + audit + last_seen
    node_state(engine, node_id)["state"]                      # per group: applied, processes

A report (``POST /v1/agent/reports``, one JSON object, every list optional)::

    {"applied": [{"group": "checkout", "release": "checkout-4-…", "sequence": 4,
                  "digest": "sha256:…", "at": 1767225600.0}],
     "refused": [{"group": "checkout", "release": "checkout-5-…", "sequence": 5,
                  "code": "BadSignature", "reason": "…", "at": …}],
     "events":  [{"kind": "delivery"|"ack"|"report", "at": …, "group": "checkout",
                  "process": {"pid": 4242, "uid": 1000, "gid": 1000, "exe": "/usr/bin/python3",
                              "start_time": 123456}, "client": "web",
                  "release": "…", "sequence": 4, "via": "watch",       # delivery
                  "status": "applied"|"failed", "error": null,         # ack
                  "metric": "error_rate", "value": 0.01}],             # report
     "dropped": 0,
     "stale": {"checkout": false},
     "errors": [{"kind": "sync", "message": "…", "at": …}]}

Invariants:

* Input is from an authenticated node but still untrusted: each list holds at
  most :data:`MAX_ITEMS` objects, strings are cut to :data:`MAX_TEXT`
  characters, and anything of the wrong shape is a ``ValueError`` (a 400).
* One report is stored in one transaction: its rows, the node's ``last_seen``
  and the audit events ``node.release_applied``, ``node.release_failed`` (a
  failed ack or exec hook) and ``node.release_refused``. :func:`store_reports`
  stores many nodes' reports in one transaction the same way (the Center's
  :class:`~konorkestra.center.reportwriter.ReportWriter` batches them).
* The view folds the newest rows only (:data:`VIEW_ROWS`), so reading a node
  stays cheap however long it has been reporting.
* Rows older than the Center's report retention are deleted by
  :mod:`konorkestra.center.retention`, except those this view needs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center import audit
from konorkestra.center.store import schema
from konorkestra.center.store.engine import iso, now, reader

MAX_ITEMS = 2000
MAX_TEXT = 2000
VIEW_ROWS = 5000
NR = schema.node_reports
_KINDS = {"delivery", "ack", "report"}


@dataclass
class Report:
    """A checked report, ready to store."""

    applied: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    stale: dict[str, bool] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0


def _text(value: object, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    return value[:MAX_TEXT]


def _int(value: object, what: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer")
    return value


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number")
    return float(value)


def _items(body: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = body.get(key, [])
    if not isinstance(items, list) or len(items) > MAX_ITEMS:
        raise ValueError(f"'{key}' must be a list of at most {MAX_ITEMS} objects")
    if not all(isinstance(i, dict) for i in items):
        raise ValueError(f"'{key}' must be a list of objects")
    return items


def _process(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what}.process must be an object")
    return {
        "pid": _int(value.get("pid"), f"{what}.process.pid"),
        "uid": _int(value.get("uid"), f"{what}.process.uid"),
        "gid": _int(value.get("gid"), f"{what}.process.gid"),
        "exe": _text(value.get("exe"), f"{what}.process.exe", optional=True),
        "start_time": _int(value.get("start_time"), f"{what}.process.start_time", optional=True),
    }


def _event(raw: Mapping[str, Any], what: str) -> dict[str, Any]:
    kind = raw.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"{what}.kind must be one of {sorted(_KINDS)}")
    out: dict[str, Any] = {
        "kind": kind,
        "at": _number(raw.get("at"), f"{what}.at"),
        "group": _text(raw.get("group"), f"{what}.group"),
        "process": _process(raw.get("process"), what),
        "client": _text(raw.get("client"), f"{what}.client", optional=True),
    }
    if kind == "delivery":
        out["release"] = _text(raw.get("release"), f"{what}.release")
        out["sequence"] = _int(raw.get("sequence"), f"{what}.sequence")
        out["via"] = _text(raw.get("via"), f"{what}.via")
    elif kind == "ack":
        out["release"] = _text(raw.get("release"), f"{what}.release")
        if raw.get("status") not in ("applied", "failed"):
            raise ValueError(f'{what}.status must be "applied" or "failed"')
        out["status"] = raw["status"]
        out["error"] = _text(raw.get("error"), f"{what}.error", optional=True)
    else:
        out["metric"] = _text(raw.get("metric"), f"{what}.metric")
        out["value"] = _number(raw.get("value"), f"{what}.value")
    return out


def parse_report(body: Mapping[str, Any]) -> Report:
    """Check a report body (see the module docstring); ``ValueError`` names the bad field."""
    report = Report()
    for i, raw in enumerate(_items(body, "applied")):
        report.applied.append(
            {
                "group": _text(raw.get("group"), f"applied[{i}].group"),
                "release": _text(raw.get("release"), f"applied[{i}].release"),
                "sequence": _int(raw.get("sequence"), f"applied[{i}].sequence"),
                "digest": _text(raw.get("digest"), f"applied[{i}].digest", optional=True),
                "at": _number(raw.get("at", 0), f"applied[{i}].at"),
            }
        )
    for i, raw in enumerate(_items(body, "refused")):
        report.refused.append(
            {
                "group": _text(raw.get("group"), f"refused[{i}].group", optional=True),
                "release": _text(raw.get("release"), f"refused[{i}].release", optional=True),
                "sequence": _int(raw.get("sequence"), f"refused[{i}].sequence", optional=True),
                "code": _text(raw.get("code"), f"refused[{i}].code"),
                "reason": _text(raw.get("reason"), f"refused[{i}].reason"),
                "at": _number(raw.get("at", 0), f"refused[{i}].at"),
            }
        )
    report.events = [_event(raw, f"events[{i}]") for i, raw in enumerate(_items(body, "events"))]
    for i, raw in enumerate(_items(body, "errors")):
        report.errors.append(
            {
                "kind": _text(raw.get("kind"), f"errors[{i}].kind"),
                "message": _text(raw.get("message"), f"errors[{i}].message"),
                "at": _number(raw.get("at", 0), f"errors[{i}].at"),
            }
        )
    stale = body.get("stale", {})
    if not isinstance(stale, dict) or len(stale) > MAX_ITEMS:
        raise ValueError("'stale' must be an object of group -> boolean")
    for group, flag in stale.items():
        if not isinstance(flag, bool):
            raise ValueError("'stale' must be an object of group -> boolean")
        report.stale[str(group)[:MAX_TEXT]] = flag
    report.dropped = _int(body.get("dropped", 0), "dropped") or 0
    return report


def store_report(engine: Engine, node_id: str, report: Report) -> int:
    """Store ``report`` for ``node_id`` in one transaction; returns the rows written."""
    return store_reports(engine, [(node_id, report)])[0]


def store_reports(
    engine: Engine, reports: Sequence[tuple[str, Report]], *, touched: Collection[str] = ()
) -> list[int]:
    """Store several nodes' reports in one transaction; the rows written per report.

    Also sets ``last_seen`` of every reporting node and of each of ``touched``.
    """
    at = now()
    rows: list[dict[str, Any]] = []
    events: list[tuple[str, str, Mapping[str, Any]]] = []
    counts = []
    for node_id, report in reports:
        before = len(rows)
        _report_rows(node_id, report, at, rows, events)
        counts.append(len(rows) - before)
    seen = sorted({*(node_id for node_id, _ in reports), *touched})
    with engine.begin() as conn:
        audit.append_many(conn, events)
        if rows:
            conn.execute(sa.insert(NR), rows)
        if seen:
            n = schema.nodes
            conn.execute(sa.update(n).where(n.c.id.in_(seen)).values(last_seen=at))
    return counts


def _report_rows(
    node_id: str,
    report: Report,
    at: dt.datetime,
    rows: list[dict[str, Any]],
    events: list[tuple[str, str, Mapping[str, Any]]],
) -> None:
    actor = f"node:{node_id}"

    def row(kind: str, group: str | None, release: str | None, body: Mapping[str, Any]) -> None:
        rows.append(
            {"node_id": node_id, "group": group, "release_id": release, "kind": kind,
             "body": dict(body), "created_at": at}
        )  # fmt: skip

    for item in report.applied:
        row("applied", item["group"], item["release"], item)
        details = {"node": node_id, "group": item["group"], "release": item["release"],
                   "sequence": item["sequence"]}  # fmt: skip
        events.append((actor, "node.release_applied", details))
    for item in report.refused:
        row("refused", item["group"], item["release"], item)
        details = {"node": node_id, **{k: item[k] for k in ("group", "release", "sequence")},
                   "code": item["code"], "reason": item["reason"]}  # fmt: skip
        events.append((actor, "node.release_refused", details))
    for event in report.events:
        kind = "metric" if event["kind"] == "report" else event["kind"]
        row(kind, event["group"], event.get("release"), event)
        if kind == "ack" and event["status"] == "failed":
            proc = event["process"]
            details = {"node": node_id, "group": event["group"], "release": event["release"],
                       "process": {"pid": proc["pid"], "exe": proc["exe"]},
                       "client": event["client"], "error": event["error"]}  # fmt: skip
            events.append((actor, "node.release_failed", details))
    for group, flag in sorted(report.stale.items()):
        row("stale", group, None, {"group": group, "stale": flag})
    for item in report.errors:
        row("error", None, None, item)
    if report.dropped:
        row("dropped", None, None, {"dropped": report.dropped})


def touch(engine: Engine, node_id: str) -> None:
    """Set the node's ``last_seen`` to now."""
    n = schema.nodes
    with engine.begin() as conn:
        conn.execute(sa.update(n).where(n.c.id == node_id).values(last_seen=now()))


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
