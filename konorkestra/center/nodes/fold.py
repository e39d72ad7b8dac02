"""A node's state, folded from its reports: a pure function the API and the rollout read.

Example::

    >>> from konorkestra.center.nodes.fold import AppliedReport, fold_node_state
    >>> state = fold_node_state([AppliedReport("checkout", "checkout-2-ab", 2, None)],
    ...                         groups=["checkout", "search"])
    >>> [(g.group, g.applied and g.applied.sequence) for g in state.groups]
    [('checkout', 2), ('search', None)]
    >>> state.to_json()["state"][1]
    {'group': 'search', 'applied': None, 'stale': None, 'refused': None, 'processes': []}

:mod:`konorkestra.center.nodes.state` reads a node's ``node_reports`` rows and
turns them into the report records below (the store's edge); this module
decides what they mean. The rules, each tested by name in
``tests/center/nodes/test_node_state.py``:

* **N1** Every Group the node is in appears, reported or not (nothing applied,
  not known stale, nothing refused, no processes).
* **N2** Every Group a record names appears too, whatever the record's kind
  (a Group the node has left still shows what it reported).
* **N3** Records without a Group (sync errors, drop counts) are not part of the view.
* **N4** Groups are listed by name.
* **N5** The committed Release of a Group is the applied one of the highest
  sequence; of equal sequences the newest record wins.
* **N6** ``stale`` is the newest stale flag and ``refused`` the newest refusal,
  whatever their sequence.
* **N7** A process is its ``(pid, start_time)``: the same pid with another start
  time is another process. Its uid, gid and exe are those of its first record;
  its client is the newest one it named.
* **N8** A delivery sets the process's release, sequence, ``via`` and
  ``seen_at``; an ack sets its ack (release, status, error, time). The newest of
  each wins, and neither touches the other.
* **N9** Processes are listed by pid, then exe.
* **N10** Per process and metric name the newest value is kept
  (:attr:`GroupState.metrics`); metrics are not part of the JSON, and a process
  seen only through metrics is not listed among the processes.
* **N11** Times are the agent's (``at``, seconds since the epoch); a missing or
  zero time is ``None``. JSON spells them RFC 3339 in UTC with ``Z``.
* **N12** :meth:`NodeState.to_json` is the ``state`` of ``GET /v1/nodes/{id}``,
  key for key (``docs/reference/api.md``).

Pure: records in (oldest first), a :class:`NodeState` out; no database, no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from konorkestra.model.types import GroupName, ReleaseId

ProcessKey = tuple[int, int | None]
"""``(pid, start_time)``: what tells two processes apart (N7)."""


@dataclass(frozen=True)
class Process:
    """An application process as the agent saw it (peer credentials)."""

    pid: int
    uid: int | None
    gid: int | None
    exe: str | None
    start_time: int | None

    @property
    def key(self) -> ProcessKey:
        return (self.pid, self.start_time)


# -- report records: one stored row each ------------------------------------------


@dataclass(frozen=True)
class AppliedReport:
    """The agent committed ``release`` for ``group``."""

    group: GroupName | None
    release: ReleaseId
    sequence: int
    at: dt.datetime | None


@dataclass(frozen=True)
class RefusedReport:
    """The agent refused a Release (``code`` says why)."""

    group: GroupName | None
    release: str | None
    sequence: int | None
    code: str | None
    reason: str | None
    at: dt.datetime | None


@dataclass(frozen=True)
class StaleReport:
    """The agent's view of whether ``group`` has gone stale."""

    group: GroupName | None
    stale: bool


@dataclass(frozen=True)
class DeliveryReport:
    """A process was handed ``release`` (``via`` a watch, a get, an exec hook)."""

    group: GroupName | None
    process: Process
    client: str | None
    release: ReleaseId
    sequence: int
    via: str
    at: dt.datetime | None


@dataclass(frozen=True)
class AckReport:
    """A process took ``release`` (``status`` ``applied``) or failed to."""

    group: GroupName | None
    process: Process
    client: str | None
    release: ReleaseId
    status: str
    error: str | None
    at: dt.datetime | None


@dataclass(frozen=True)
class MetricReport:
    """A process reported one value of one metric (a guard signal)."""

    group: GroupName | None
    process: Process
    client: str | None
    metric: str
    value: float
    at: dt.datetime | None


@dataclass(frozen=True)
class OtherReport:
    """A row the view shows nothing of but its Group (errors, drop counts)."""

    group: GroupName | None


ReportRecord = (
    AppliedReport
    | RefusedReport
    | StaleReport
    | DeliveryReport
    | AckReport
    | MetricReport
    | OtherReport
)


# -- the view ------------------------------------------------------------------------


@dataclass(frozen=True)
class Committed:
    """The Release a node committed for a Group (N5)."""

    release: ReleaseId
    sequence: int
    at: dt.datetime | None

    def to_json(self) -> dict[str, object]:
        return {"release": self.release, "sequence": self.sequence, "at": _iso(self.at)}


@dataclass(frozen=True)
class Refusal:
    """The newest Release a node refused for a Group (N6)."""

    release: str | None
    sequence: int | None
    code: str | None
    reason: str | None
    at: dt.datetime | None

    def to_json(self) -> dict[str, object]:
        return {"release": self.release, "sequence": self.sequence, "code": self.code,
                "reason": self.reason, "at": _iso(self.at)}  # fmt: skip


@dataclass(frozen=True)
class Ack:
    """A process's newest answer to a delivered Release (N8)."""

    release: ReleaseId
    status: str
    error: str | None
    at: dt.datetime | None

    def to_json(self) -> dict[str, object]:
        return {"release": self.release, "status": self.status, "error": self.error,
                "at": _iso(self.at)}  # fmt: skip


@dataclass(frozen=True)
class ProcessState:
    """One process of a Group: what it was handed last and how it answered (N7, N8)."""

    process: Process
    client: str | None = None
    release: ReleaseId | None = None
    sequence: int | None = None
    seen_at: dt.datetime | None = None
    via: str | None = None
    ack: Ack | None = None

    def to_json(self) -> dict[str, object]:
        p = self.process
        return {"pid": p.pid, "uid": p.uid, "gid": p.gid, "exe": p.exe,
                "start_time": p.start_time, "client": self.client, "release": self.release,
                "sequence": self.sequence, "seen_at": _iso(self.seen_at), "via": self.via,
                "ack": None if self.ack is None else self.ack.to_json()}  # fmt: skip


@dataclass(frozen=True)
class MetricSample:
    """The newest value of one metric of one process (N10)."""

    process: Process
    client: str | None
    metric: str
    value: float
    at: dt.datetime | None


@dataclass(frozen=True)
class GroupState:
    """A node's state in one Group."""

    group: GroupName
    applied: Committed | None = None
    stale: bool | None = None
    refused: Refusal | None = None
    processes: tuple[ProcessState, ...] = ()
    metrics: tuple[MetricSample, ...] = ()
    """Newest per (process, metric), by process key then metric name; not in the JSON."""

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "applied": None if self.applied is None else self.applied.to_json(),
            "stale": self.stale,
            "refused": None if self.refused is None else self.refused.to_json(),
            "processes": [p.to_json() for p in self.processes],
        }


@dataclass(frozen=True)
class NodeState:
    """A node's state in every Group it is in or has reported about (N1, N2, N4)."""

    groups: tuple[GroupState, ...]

    def group(self, name: str) -> GroupState | None:
        return next((g for g in self.groups if g.group == name), None)

    def to_json(self) -> dict[str, object]:
        """``{"state": [...]}`` as ``GET /v1/nodes/{id}`` shows it (N12)."""
        return {"state": [g.to_json() for g in self.groups]}


# -- the fold ------------------------------------------------------------------------


@dataclass
class _Folding:
    group: GroupName
    applied: Committed | None = None
    stale: bool | None = None
    refused: Refusal | None = None
    processes: dict[ProcessKey, ProcessState] = field(default_factory=dict)
    metrics: dict[tuple[ProcessKey, str], MetricSample] = field(default_factory=dict)

    def process(self, proc: Process, client: str | None) -> ProcessState:
        current = self.processes.get(proc.key)
        if current is None:
            return ProcessState(proc, client=client)  # N7: identity of the first record
        return replace(current, client=client) if client else current

    def done(self) -> GroupState:
        return GroupState(
            self.group,
            self.applied,
            self.stale,
            self.refused,
            tuple(
                sorted(self.processes.values(), key=lambda p: (p.process.pid, p.process.exe or ""))
            ),
            tuple(self.metrics[k] for k in sorted(self.metrics, key=_metric_order)),
        )


def fold_node_state(records: Iterable[ReportRecord], groups: Iterable[str] = ()) -> NodeState:
    """Fold ``records`` (oldest first) into the node's state in ``groups`` and beyond."""
    per: dict[GroupName, _Folding] = {}
    for r in records:
        if r.group is None:
            continue  # N3
        f = per.setdefault(r.group, _Folding(r.group))  # N2
        if isinstance(r, AppliedReport):
            if f.applied is None or r.sequence >= f.applied.sequence:  # N5
                f.applied = Committed(r.release, r.sequence, r.at)
        elif isinstance(r, StaleReport):
            f.stale = r.stale  # N6
        elif isinstance(r, RefusedReport):
            f.refused = Refusal(r.release, r.sequence, r.code, r.reason, r.at)  # N6
        elif isinstance(r, DeliveryReport):
            p = f.process(r.process, r.client)
            f.processes[r.process.key] = replace(
                p, release=r.release, sequence=r.sequence, via=r.via, seen_at=r.at
            )  # N8
        elif isinstance(r, AckReport):
            p = f.process(r.process, r.client)
            f.processes[r.process.key] = replace(p, ack=Ack(r.release, r.status, r.error, r.at))
        elif isinstance(r, MetricReport):
            sample = MetricSample(r.process, r.client, r.metric, r.value, r.at)
            f.metrics[(r.process.key, r.metric)] = sample  # N10
    for g in groups:
        per.setdefault(GroupName(g), _Folding(GroupName(g)))  # N1
    return NodeState(tuple(per[g].done() for g in sorted(per)))  # N4


def _metric_order(key: tuple[ProcessKey, str]) -> tuple[int, int, str]:
    (pid, start), metric = key
    return (pid, -1 if start is None else start, metric)


def _iso(when: dt.datetime | None) -> str | None:
    """RFC 3339 in UTC with ``Z`` (N11)."""
    return None if when is None else when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def epoch_time(value: object) -> dt.datetime | None:
    """An agent's ``at`` (seconds since the epoch) as a time; ``None`` if absent or zero (N11)."""
    if not isinstance(value, int | float) or not value:
        return None
    return dt.datetime.fromtimestamp(float(value), dt.UTC)
