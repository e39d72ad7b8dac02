"""What agents report (``POST /v1/agent/reports``), checked into a :class:`Report`.

Example::

    report = parse_report(await json_body(request))          # ValueError on bad input

Storing is :mod:`konorkestra.center.agentapi.reportrows`'s; the per-node view
folded from the stored rows is :mod:`konorkestra.center.nodes.state`'s.

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
* Pure: a body in, a :class:`Report` or a ``ValueError`` out; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_ITEMS = 2000
MAX_TEXT = 2000
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
