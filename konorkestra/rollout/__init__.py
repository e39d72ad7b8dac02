"""The rollout engine: pure decisions that take a Release from a canary to the fleet.

Example::

    from konorkestra.rollout import Command, Fleet, ReleaseRef, decide, start

    d = start(group, policy, release=new, stable=old, fleet=fleet, now=now)
    d.desired        # {node: release id or None}: who gets the new Release now
    d.events         # audit: rollout.started, wave.started, ...
    d = decide(d.state, policy, fleet, later, [Command("approve", "alice", "canary ok")])

Given the Policy, the Group's enrolled nodes (id, labels), the stable and the
new Release, what the nodes reported (commits, per-process acks, staleness, app
metrics), operator commands and the time, the engine says which nodes get the
new Release, when a bake ends, when approval is needed, when a guard is
breached and what follows, and when the rollout is complete. It imports only
:mod:`konorkestra.model` and the standard library; it reads no clock, disk or
network and draws no random number. The Center stores :class:`RolloutState`
(``to_json``) and delivers :attr:`Decision.desired`; ``konorctl plan`` calls
:func:`plan` — the same wave selection the engine uses.

Rules, each tested by its name under ``tests/rollout/``:

* W1-W6 waves (:mod:`~konorkestra.rollout.waves`),
* G1-G7 guards (:mod:`~konorkestra.rollout.guards`),
* A1-A7 operator commands (:mod:`~konorkestra.rollout.commands`),
* B1-B6 waves and bakes, R1-R6 failure and rollback, D1 desired state,
  S2, S3, S5, S6 time and supersede (:mod:`~konorkestra.rollout.engine`),
* S1, S4 the stored state (:mod:`~konorkestra.rollout.state`).

States (``rollout.*``, ``wave.*``, ``bake.*`` are the audit events on the arrows)::

    stateDiagram-v2
        [*] --> waving: start / rollout.started, wave.started
        waving --> baking: wave complete (B1) / bake.started
        baking --> waving: bake done, approval auto (B4) / bake.done, wave.started
        baking --> awaiting_approval: bake done, approval manual (A1) / approval.required
        awaiting_approval --> waving: approve (A1) / approval.granted, wave.started
        baking --> completed: bake done after the last step / rollout.completed
        waving --> rolling_back: breach or wave deadline, onFailure rollback (R2) / guard.breached
        baking --> rolling_back: breach (R2) / guard.breached
        awaiting_approval --> rolling_back: breach (R1, R2) / guard.breached
        waving --> paused: pause (A2), or breach with onFailure pause (R4)
        baking --> paused: pause, or breach with onFailure pause
        awaiting_approval --> paused: pause, or breach with onFailure pause
        paused --> waving: resume (A3), fresh wave deadline
        paused --> baking: resume, remaining bake time
        paused --> awaiting_approval: resume
        waving --> rolling_back: abort (A4) / rollout.aborted
        paused --> rolling_back: abort / rollout.aborted
        rolling_back --> rolled_back: rollback_signed (R3) / rollout.rolled_back
        paused --> completed: promote (A5) / rollout.promoted, rollout.completed
        waving --> completed: promote
        waving --> aborted: abort of a first Release (R5)
        completed --> [*]
        rolled_back --> [*]
        aborted --> [*]

    (abort and promote leave baking and awaiting_approval the same way; a new
    Release supersedes any running phase but rolling_back: the old rollout is
    ``rollout.superseded`` and the new one starts at waving, step one — S5.)
"""

from __future__ import annotations

from konorkestra.rollout.commands import command_error
from konorkestra.rollout.engine import (
    Decision,
    RolloutError,
    decide,
    desired,
    desired_for,
    desired_of,
    rollback_signed,
    start,
    supersede,
)
from konorkestra.rollout.guards import Reading
from konorkestra.rollout.inputs import (
    Ack,
    Command,
    Fleet,
    Metric,
    Node,
    NodeReport,
    ProcessId,
    ReleaseRef,
)
from konorkestra.rollout.state import Event, Phase, RollbackRequest, RolloutState, StateError
from konorkestra.rollout.transitions import WAVE_TIMEOUT
from konorkestra.rollout.waves import Wave, effective_steps, plan

__all__ = [
    "WAVE_TIMEOUT",
    "Ack",
    "Command",
    "Decision",
    "Event",
    "Fleet",
    "Metric",
    "Node",
    "NodeReport",
    "Phase",
    "ProcessId",
    "Reading",
    "ReleaseRef",
    "RollbackRequest",
    "RolloutError",
    "RolloutState",
    "StateError",
    "Wave",
    "command_error",
    "decide",
    "desired",
    "desired_for",
    "desired_of",
    "effective_steps",
    "plan",
    "rollback_signed",
    "start",
    "supersede",
]
