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
* A report becomes types here (:class:`Applied`, :class:`Refused`,
  :class:`Event` with its :class:`Process`, :class:`ReportError`); each item's
  ``to_json()`` is exactly the body stored in its ``node_reports`` row, key for
  key, as :mod:`konorkestra.center.nodes.state` reads it back.
* Release ids in a report are the node's claims, kept as text: the scope rules
  (:mod:`konorkestra.center.agentapi.scope`, S3) judge them.
* Pure: a body in, a :class:`Report` or a ``ValueError`` out; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from konorkestra.model.types import JsonObject

MAX_ITEMS = 2000
MAX_TEXT = 2000
EventKind = Literal["delivery", "ack", "report"]
_KINDS = {"delivery", "ack", "report"}


@dataclass(frozen=True)
class Applied:
    """The node committed ``release`` (sequence ``sequence``) of ``group``."""

    group: str
    release: str
    sequence: int
    digest: str | None
    """The signed statement's digest, when the agent sends it."""
    at: float

    def to_json(self) -> JsonObject:
        return {"group": self.group, "release": self.release, "sequence": self.sequence,
                "digest": self.digest, "at": self.at}  # fmt: skip


@dataclass(frozen=True)
class Refused:
    """The node refused a Release (``code`` is the agent's error class)."""

    group: str | None
    release: str | None
    sequence: int | None
    code: str
    reason: str
    at: float
    digest: None = field(default=None, init=False, repr=False)
    """A refusal names no statement digest (read by the scope rules)."""

    def to_json(self) -> JsonObject:
        return {"group": self.group, "release": self.release, "sequence": self.sequence,
                "code": self.code, "reason": self.reason, "at": self.at}  # fmt: skip


@dataclass(frozen=True)
class Process:
    """The local process an event is about, as the agent's peer credentials saw it."""

    pid: int
    uid: int
    gid: int
    exe: str | None
    start_time: int | None

    def to_json(self) -> JsonObject:
        return {"pid": self.pid, "uid": self.uid, "gid": self.gid, "exe": self.exe,
                "start_time": self.start_time}  # fmt: skip


@dataclass(frozen=True)
class Event:
    """What a local app did: got a Release (``delivery``), acknowledged it
    (``ack``: ``status`` and ``error``) or reported a metric (``report``).

    Fields of the other kinds are ``None`` and absent from :meth:`to_json`.
    """

    kind: EventKind
    at: float
    group: str
    process: Process
    client: str | None
    release: str | None = None
    sequence: int | None = None
    via: str | None = None
    status: str | None = None
    error: str | None = None
    metric: str | None = None
    value: float | None = None
    digest: None = field(default=None, init=False, repr=False)

    def to_json(self) -> JsonObject:
        out: JsonObject = {"kind": self.kind, "at": self.at, "group": self.group,
                           "process": self.process.to_json(), "client": self.client}  # fmt: skip
        if self.kind == "delivery":
            out.update(release=self.release, sequence=self.sequence, via=self.via)
        elif self.kind == "ack":
            out.update(release=self.release, status=self.status, error=self.error)
        else:
            out.update(metric=self.metric, value=self.value)
        return out


@dataclass(frozen=True)
class ReportError:
    """An error the agent met on its own (``kind`` such as ``sync``)."""

    kind: str
    message: str
    at: float

    def to_json(self) -> JsonObject:
        return {"kind": self.kind, "message": self.message, "at": self.at}


@dataclass
class Report:
    """A checked report, ready to store."""

    applied: list[Applied] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    stale: dict[str, bool] = field(default_factory=dict)
    errors: list[ReportError] = field(default_factory=list)
    dropped: int = 0


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    return value[:MAX_TEXT]


def _opt_text(value: object, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer")
    return value


def _opt_int(value: object, what: str) -> int | None:
    return None if value is None else _int(value, what)


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number")
    return float(value)


def _items(body: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    items = body.get(key, [])
    if not isinstance(items, list) or len(items) > MAX_ITEMS:
        raise ValueError(f"'{key}' must be a list of at most {MAX_ITEMS} objects")
    if not all(isinstance(i, dict) for i in items):
        raise ValueError(f"'{key}' must be a list of objects")
    return items


def _process(value: object, what: str) -> Process:
    if not isinstance(value, dict):
        raise ValueError(f"{what}.process must be an object")
    return Process(
        pid=_int(value.get("pid"), f"{what}.process.pid"),
        uid=_int(value.get("uid"), f"{what}.process.uid"),
        gid=_int(value.get("gid"), f"{what}.process.gid"),
        exe=_opt_text(value.get("exe"), f"{what}.process.exe"),
        start_time=_opt_int(value.get("start_time"), f"{what}.process.start_time"),
    )


def _event(raw: Mapping[str, object], what: str) -> Event:
    kind = raw.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"{what}.kind must be one of {sorted(_KINDS)}")
    at = _number(raw.get("at"), f"{what}.at")
    group = _text(raw.get("group"), f"{what}.group")
    process = _process(raw.get("process"), what)
    client = _opt_text(raw.get("client"), f"{what}.client")
    if kind == "delivery":
        return Event("delivery", at, group, process, client,
                     release=_text(raw.get("release"), f"{what}.release"),
                     sequence=_int(raw.get("sequence"), f"{what}.sequence"),
                     via=_text(raw.get("via"), f"{what}.via"))  # fmt: skip
    if kind == "ack":
        status = raw.get("status")
        if status != "applied" and status != "failed":
            raise ValueError(f'{what}.status must be "applied" or "failed"')
        return Event("ack", at, group, process, client,
                     release=_text(raw.get("release"), f"{what}.release"), status=status,
                     error=_opt_text(raw.get("error"), f"{what}.error"))  # fmt: skip
    return Event("report", at, group, process, client,
                 metric=_text(raw.get("metric"), f"{what}.metric"),
                 value=_number(raw.get("value"), f"{what}.value"))  # fmt: skip


def parse_report(body: Mapping[str, object]) -> Report:
    """Check a report body (see the module docstring); ``ValueError`` names the bad field."""
    report = Report()
    for i, raw in enumerate(_items(body, "applied")):
        w = f"applied[{i}]"
        report.applied.append(
            Applied(
                group=_text(raw.get("group"), f"{w}.group"),
                release=_text(raw.get("release"), f"{w}.release"),
                sequence=_int(raw.get("sequence"), f"{w}.sequence"),
                digest=_opt_text(raw.get("digest"), f"{w}.digest"),
                at=_number(raw.get("at", 0), f"{w}.at"),
            )
        )
    for i, raw in enumerate(_items(body, "refused")):
        w = f"refused[{i}]"
        report.refused.append(
            Refused(
                group=_opt_text(raw.get("group"), f"{w}.group"),
                release=_opt_text(raw.get("release"), f"{w}.release"),
                sequence=_opt_int(raw.get("sequence"), f"{w}.sequence"),
                code=_text(raw.get("code"), f"{w}.code"),
                reason=_text(raw.get("reason"), f"{w}.reason"),
                at=_number(raw.get("at", 0), f"{w}.at"),
            )
        )
    report.events = [_event(raw, f"events[{i}]") for i, raw in enumerate(_items(body, "events"))]
    for i, raw in enumerate(_items(body, "errors")):
        w = f"errors[{i}]"
        report.errors.append(
            ReportError(
                kind=_text(raw.get("kind"), f"{w}.kind"),
                message=_text(raw.get("message"), f"{w}.message"),
                at=_number(raw.get("at", 0), f"{w}.at"),
            )
        )
    stale = body.get("stale", {})
    if not isinstance(stale, dict) or len(stale) > MAX_ITEMS:
        raise ValueError("'stale' must be an object of group -> boolean")
    for group, flag in stale.items():
        if not isinstance(flag, bool):
            raise ValueError("'stale' must be an object of group -> boolean")
        report.stale[str(group)[:MAX_TEXT]] = flag
    report.dropped = _int(body.get("dropped", 0), "dropped")
    return report
