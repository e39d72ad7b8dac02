"""The rollout's state and its audit events: frozen values the Center stores as JSON.

Example::

    row = json.dumps(decision.state.to_json())          # store it
    state = RolloutState.from_json(json.loads(row))     # after a restart
    state.bake_until                                    # absolute: the remaining time survives

Rules (tested in ``tests/rollout/test_state.py``):

S1  A state is a frozen value; ``from_json(to_json(s)) == s`` for every state,
    and every deadline is an absolute UTC time (``wave_deadline``,
    ``bake_until``), so a Center restart resumes with the remaining time.
    ``from_json`` refuses anything else with :class:`StateError`.
S4  The stable Release is the last one that completed: :meth:`next_stable` is
    the new Release once ``completed``, the rollback Release once
    ``rolled_back``, and the stable one otherwise.

Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from konorkestra.model.types import GroupName, NodeId, ReleaseId, Sequence
from konorkestra.rollout.guards import Reading
from konorkestra.rollout.inputs import ReleaseRef


class StateError(ValueError):
    """A stored rollout state cannot be read back."""


class Phase(enum.StrEnum):
    WAVING = "waving"
    BAKING = "baking"
    AWAITING_APPROVAL = "awaiting_approval"
    PAUSED = "paused"
    ROLLING_BACK = "rolling_back"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


ACTIVE = frozenset({Phase.WAVING, Phase.BAKING, Phase.AWAITING_APPROVAL})
"""Phases in which time and guards move the rollout."""
TERMINAL = frozenset({Phase.COMPLETED, Phase.ROLLED_BACK, Phase.ABORTED})


@dataclass(frozen=True)
class Approval:
    """Who let step ``step`` (0-based) start, and why."""

    step: int
    actor: str
    reason: str
    at: dt.datetime


@dataclass(frozen=True)
class Event:
    """One audit event. ``actor`` and ``reason`` are set where an operator acted."""

    kind: str
    at: dt.datetime
    release: ReleaseId
    step: int | None = None
    actor: str | None = None
    reason: str = ""
    nodes: tuple[NodeId, ...] = ()
    readings: tuple[Reading, ...] = ()
    other: ReleaseId | None = None
    """The other Release involved: superseding, superseded or rollback."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "at": _time(self.at),
            "release": self.release,
            "step": self.step,
            "actor": self.actor,
            "reason": self.reason,
            "nodes": list(self.nodes),
            "readings": [
                {
                    "signal": r.signal,
                    "threshold": r.threshold,
                    "value": r.value,
                    "status": r.status,
                    "detail": r.detail,
                }
                for r in self.readings
            ],
            "other": self.other,
        }


@dataclass(frozen=True)
class RollbackRequest:
    """Sign a new Release for ``group``: ``restore``'s content, ``previous`` = ``bad``."""

    group: GroupName
    bad: ReleaseRef
    restore: ReleaseRef
    sequence: Sequence
    """The lowest acceptable sequence (``bad + 1``); the Center uses its next one."""
    reason: str


@dataclass(frozen=True)
class RolloutState:
    """Where one Release's rollout stands."""

    group: GroupName
    release: ReleaseRef
    stable: ReleaseRef | None
    phase: Phase
    step: int
    """0-based index into the effective steps."""
    targeted: tuple[NodeId, ...]
    """Every node ever told to take the new Release in this rollout, sorted."""
    started_at: dt.datetime
    updated_at: dt.datetime
    wave_started_at: dt.datetime | None = None
    wave_deadline: dt.datetime | None = None
    bake_until: dt.datetime | None = None
    paused_at: dt.datetime | None = None
    paused_from: Phase | None = None
    reason: str = ""
    """Why it paused, rolled back or aborted."""
    rollback: ReleaseRef | None = None
    approvals: tuple[Approval, ...] = ()
    superseded: tuple[ReleaseId, ...] = ()
    """Earlier Releases of this Group whose rollouts this one replaced."""

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL

    def next_stable(self) -> ReleaseRef | None:
        """S4: the Release a following rollout of the Group starts from."""
        if self.phase is Phase.COMPLETED:
            return self.release
        if self.phase is Phase.ROLLED_BACK and self.rollback is not None:
            return self.rollback
        return self.stable

    def rollback_request(self) -> RollbackRequest | None:
        """R2: the signature this rollout waits for, derived from the state (restart-safe)."""
        if self.phase is not Phase.ROLLING_BACK or self.stable is None:
            return None
        sequence = Sequence(self.release.sequence + 1)
        return RollbackRequest(self.group, self.release, self.stable, sequence, self.reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "release": _ref(self.release),
            "stable": _ref(self.stable),
            "phase": self.phase.value,
            "step": self.step,
            "targeted": list(self.targeted),
            "started_at": _time(self.started_at),
            "updated_at": _time(self.updated_at),
            "wave_started_at": _time(self.wave_started_at),
            "wave_deadline": _time(self.wave_deadline),
            "bake_until": _time(self.bake_until),
            "paused_at": _time(self.paused_at),
            "paused_from": None if self.paused_from is None else self.paused_from.value,
            "reason": self.reason,
            "rollback": _ref(self.rollback),
            "approvals": [
                {"step": a.step, "actor": a.actor, "reason": a.reason, "at": _time(a.at)}
                for a in self.approvals
            ],
            "superseded": list(self.superseded),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RolloutState:
        try:
            started = _parse_time(data["started_at"])
            paused_from = data["paused_from"]
            release = _parse_ref(data["release"])
            if started is None or release is None:
                raise StateError("started_at and release are required")
            return cls(
                group=GroupName(_str(data["group"])),
                release=release,
                stable=_parse_ref(data["stable"]),
                phase=Phase(data["phase"]),
                step=_int(data["step"]),
                targeted=tuple(NodeId(_str(n)) for n in _list(data["targeted"])),
                started_at=started,
                updated_at=_parse_time(data["updated_at"]) or started,
                wave_started_at=_parse_time(data["wave_started_at"]),
                wave_deadline=_parse_time(data["wave_deadline"]),
                bake_until=_parse_time(data["bake_until"]),
                paused_at=_parse_time(data["paused_at"]),
                paused_from=None if paused_from is None else Phase(paused_from),
                reason=_str(data["reason"]),
                rollback=_parse_ref(data["rollback"]),
                approvals=tuple(
                    Approval(
                        _int(a["step"]),
                        _str(a["actor"]),
                        _str(a["reason"]),
                        _parse_time(a["at"]) or started,
                    )
                    for a in _list(data["approvals"])
                ),
                superseded=tuple(ReleaseId(_str(r)) for r in _list(data["superseded"])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, StateError):
                raise
            raise StateError(f"stored rollout state is malformed: {exc!r}") from exc


def _time(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise StateError("rollout times must be timezone-aware")
    return value.astimezone(dt.UTC).isoformat()


def _parse_time(value: object) -> dt.datetime | None:
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(_str(value))
    if parsed.tzinfo is None:
        raise StateError(f"time {value!r} has no timezone")
    return parsed


def _ref(ref: ReleaseRef | None) -> dict[str, Any] | None:
    return None if ref is None else {"id": ref.id, "sequence": ref.sequence}


def _parse_ref(value: object) -> ReleaseRef | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise StateError(f"release reference {value!r} is not an object")
    return ReleaseRef(ReleaseId(_str(value["id"])), Sequence(_int(value["sequence"])))


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise StateError(f"{value!r} is not a string")
    return value


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise StateError(f"{value!r} is not a list")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise StateError(f"{value!r} is not an integer")
    return value
