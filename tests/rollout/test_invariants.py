"""The engine's invariants under random fleets, reports, commands, new Releases and time.

A hypothesis state machine plays the Center around the pure engine: nodes join
and leave, agents commit what they are told (never a lower sequence, as the
real verifier insists), processes ack ``applied`` or ``failed``, apps report
metrics, agents go stale, operators send commands, commits arrive mid-rollout,
and the Center signs rollbacks when asked. After every decision it checks:

I1  Allowance. The engine adds a node to the target set only while the
    current step has room: after a decision that grew the set (other than a
    promote), the enrolled targeted nodes number at most the step's wave size.
    Nodes targeted earlier stay (a node is never withdrawn), so the count can
    stay above the size when the fleet shrank or when nodes were carried over
    from a superseded Release: those had the Release before, they are not new
    exposure. While paused, awaiting approval, baking, rolling back or ended,
    the set does not grow at all.
I2  After abort or rollback no node is ever told to take that Release again.
I3  The stable Release is always the last one that completed (or the last
    rollback Release), and every node outside the wave is told exactly that.
I4  Same inputs, same decision.
I5  Within one step of one rollout, deadlines only move forward, and a bake
    never ends before the end it had at the previous decision.
I6  No node is ever told to take a Release older than the one it committed
    (an Agent would refuse it as a rollback attack).
I7  The state survives its JSON form unchanged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from konorkestra.model.definitions import Policy
from konorkestra.model.types import NodeId, ReleaseId, Sequence
from konorkestra.rollout import (
    Ack,
    Command,
    Decision,
    Fleet,
    Metric,
    Node,
    NodeReport,
    Phase,
    ProcessId,
    ReleaseRef,
    RolloutState,
    decide,
    effective_steps,
    rollback_signed,
    start,
    supersede,
)
from konorkestra.rollout.inputs import AckOutcome
from konorkestra.rollout.waves import wave_size
from tests.rollout.world import GROUP, T0, make_policy

POOL = tuple(
    Node(NodeId(f"n{i:02d}"), {"zone": "eu-1" if i % 3 == 0 else "us-1"}) for i in range(24)
)
TEMPLATES = (
    ((10, "30s"), (50, "120s"), (100, "0s")),
    ((5, "0s"), (100, "30s")),
    ((25, "30s"), (50, "0s"), (75, "30s"), (100, "30s")),
)
THRESHOLDS: dict[str, list[float]] = {
    "failed_acks": [0, 1, 3],
    "ack_success_rate": [0.5, 0.9, 1.0],
    "stale_nodes": [0, 2],
    "error_rate": [0.1, 0.5],
    "latency_p99_ms": [100, 500],
}
GUARDS = st.lists(st.sampled_from(sorted(THRESHOLDS)), max_size=3, unique=True).flatmap(
    lambda signals: st.fixed_dictionaries({s: st.sampled_from(THRESHOLDS[s]) for s in signals})
)
policies = st.builds(
    make_policy,
    steps=st.sampled_from(TEMPLATES),
    guards=GUARDS,
    on_failure=st.sampled_from(["rollback", "pause"]),
    approval=st.sampled_from(["auto", "manual"]),
    strategy=st.sampled_from(["canary", "canary", "all-at-once"]),
    selectors=st.sampled_from([None, {0: {"zone": "eu-1"}}]),
)


def _release(sequence: int) -> ReleaseRef:
    return ReleaseRef(ReleaseId(f"checkout-{sequence}-{sequence:016x}"), Sequence(sequence))


class Rollouts(RuleBasedStateMachine):
    @initialize(policy=policies, size=st.integers(1, 16), first=st.booleans())
    def begin(self, policy: Policy, size: int, first: bool) -> None:
        if policy.strategy == "all-at-once":
            policy = dataclasses.replace(policy, steps=policy.steps[-1:])
        self.policy = policy
        self.now = T0
        self.enrolled = list(POOL[:size])
        self.reports: dict[NodeId, NodeReport] = {}
        self.sequences: dict[ReleaseId, int] = {}
        self.next_sequence = 1
        self.stable: ReleaseRef | None = None if first else self._new_release()
        if self.stable is not None:
            for node in self.enrolled:
                self._commit(node.id, self.stable.id)
        self.last_completed = self.stable
        self.dead: set[ReleaseId] = set()
        self.decision: Decision = start(
            GROUP, self.policy, self._new_release(), self.stable, self.fleet(), self.now
        )
        self.previous: RolloutState | None = None
        self._check(self.decision, grew_by_promote=False)

    # --- the world -------------------------------------------------------------------------

    def _new_release(self) -> ReleaseRef:
        self.next_sequence += 1
        ref = _release(self.next_sequence)
        self.sequences[ref.id] = ref.sequence
        return ref

    def fleet(self) -> Fleet:
        return Fleet(tuple(self.enrolled), dict(self.reports))

    def _commit(self, node: NodeId, release: ReleaseId) -> None:
        self.reports[node] = NodeReport(
            committed=release,
            committed_at=self.now,
            watchers=frozenset({ProcessId(f"{node}/1"), ProcessId(f"{node}/2")}),
        )

    @property
    def state(self) -> RolloutState:
        return self.decision.state

    # --- rules -----------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([1, 5, 30, 60, 130, 400]))
    def tick(self, seconds: int) -> None:
        self.now += dt.timedelta(seconds=seconds)
        self._decide([])

    @rule(share=st.integers(1, 100), failed=st.integers(0, 4), acks=st.integers(0, 4))
    def agents_apply(self, share: int, failed: int, acks: int) -> None:
        """Some nodes told a Release they lack commit it; mostly their processes ack."""
        told = []
        for node, release in sorted(self.decision.desired.items()):
            have = self.reports.get(node, NodeReport()).committed
            if release is None or have == release:
                continue
            if self.sequences[release] < self.sequences.get(have or ReleaseId(""), 0):
                continue  # an Agent refuses a lower sequence
            told.append((node, release))
        for node, release in told[: max(1, len(told) * share // 100)]:
            self._commit(node, release)
            if acks < 4:  # hypothesis favours small numbers: the common case goes there
                outcome: AckOutcome = "failed" if failed == 4 else "applied"
                report = self.reports[node]
                new_acks = tuple(
                    Ack(p, release, outcome, self.now) for p in sorted(report.watchers)
                )
                self.reports[node] = dataclasses.replace(report, acks=new_acks)
        self._decide([])

    @rule(error_rate=st.sampled_from([0.0, 0.0, 0.0, 0.7]), latency=st.sampled_from([10, 10, 900]))
    def apps_report(self, error_rate: float, latency: float) -> None:
        """Every process on a node that committed the rollout's Release reports metrics."""
        for node, report in list(self.reports.items()):
            if report.committed == self.state.release.id:
                metrics = tuple(
                    Metric(p, signal, value, self.now)
                    for p in sorted(report.watchers)
                    for signal, value in (("error_rate", error_rate), ("latency_p99_ms", latency))
                )
                self.reports[node] = dataclasses.replace(report, metrics=report.metrics + metrics)
        self._decide([])

    @rule(node=st.sampled_from(POOL))
    def goes_stale(self, node: Node) -> None:
        if node.id in self.reports:
            self.reports[node.id] = dataclasses.replace(self.reports[node.id], stale=True)
            self._decide([])

    @rule(node=st.sampled_from(POOL))
    def joins_or_leaves(self, node: Node) -> None:
        if node in self.enrolled:
            if len(self.enrolled) > 1:
                self.enrolled.remove(node)
        else:
            self.enrolled.append(node)
        self._decide([])

    @rule(
        kind=st.sampled_from(
            ["approve"] * 4 + ["pause"] * 2 + ["resume"] * 3 + ["abort", "promote"]
        )
    )
    def operator(self, kind: str) -> None:
        self._decide([Command(kind, "ops", "because")])  # type: ignore[arg-type]

    @precondition(lambda self: self.state.phase is Phase.BAKING)
    @rule()
    def operator_pauses_a_bake(self) -> None:
        self._decide([Command("pause", "ops", "look closer")])

    @precondition(lambda self: self.state.phase is Phase.PAUSED)
    @rule(seconds=st.sampled_from([0, 10, 100]))
    def operator_resumes_later(self, seconds: int) -> None:
        self.now += dt.timedelta(seconds=seconds)
        self._decide([Command("resume", "ops", "carry on")])

    @precondition(lambda self: self.state.phase is Phase.ROLLING_BACK)
    @rule()
    def center_signs_the_rollback(self) -> None:
        self.dead.add(self.state.release.id)
        self.previous = self.state
        rollback = self._new_release()
        self.decision = rollback_signed(self.state, self.policy, self.fleet(), self.now, rollback)
        self.last_completed = rollback
        self._check(self.decision, grew_by_promote=False)

    @precondition(lambda self: self.state.phase is not Phase.ROLLING_BACK)
    @rule(often=st.integers(0, 5))
    def a_commit_arrives(self, often: int) -> None:
        if often < 5 and not self.state.terminal:
            return  # mid-rollout commits are rarer than the rest of life
        release = self._new_release()
        self.previous = None  # a new rollout: I1 and I5 restart
        if self.state.terminal:
            assert self.state.next_stable() == self.last_completed  # I3
            self.stable = self.last_completed
            self.decision = start(GROUP, self.policy, release, self.stable, self.fleet(), self.now)
        else:
            before = self.state
            self.decision = supersede(self.state, self.policy, release, self.fleet(), self.now)
            carried = set(before.targeted)
            assert set(self.state.targeted) >= carried
            added = (set(self.state.targeted) - carried) & self.fleet().ids
            step = effective_steps(self.policy, first_release=self.stable is None)[0]
            assert not added or len(set(self.state.targeted) & self.fleet().ids) <= wave_size(
                step.percent, len(self.enrolled)
            )
        self._check(self.decision, grew_by_promote=False)

    # --- the checks ------------------------------------------------------------------------

    def _decide(self, commands: list[Command]) -> None:
        self.previous = self.state
        fleet = self.fleet()
        decision = decide(self.state, self.policy, fleet, self.now, commands)
        assert decision == decide(self.state, self.policy, fleet, self.now, commands)  # I4
        if decision.state.phase in (Phase.ROLLING_BACK, Phase.ABORTED):
            self.dead.add(decision.state.release.id)
        promoted = any(e.kind == "rollout.promoted" for e in decision.events)
        if any(e.kind == "rollout.completed" for e in decision.events):
            self.last_completed = decision.state.release
        self.decision = decision
        self._check(decision, grew_by_promote=promoted)

    def _check(self, decision: Decision, *, grew_by_promote: bool) -> None:
        state, before, fleet = decision.state, self.previous, self.fleet()
        enrolled = fleet.ids
        steps = effective_steps(self.policy, first_release=state.stable is None)
        # I1: growth only within the current step's size, and only while waving.
        if before is not None and before.release == state.release:
            grown = set(state.targeted) - set(before.targeted)
            assert set(before.targeted) <= set(state.targeted)
            if grown and not grew_by_promote:
                assert {"wave.started", "wave.extended"} & {e.kind for e in decision.events}
                size = wave_size(steps[state.step].percent, len(enrolled))
                assert len(set(state.targeted) & enrolled) <= size, (state.step, size)
        told_new = {n for n, r in decision.desired.items() if r == state.release.id}
        if state.phase is not Phase.COMPLETED:
            assert told_new <= set(state.targeted)
        # I2: no dead Release is ever told to anyone.
        assert not self.dead & set(decision.desired.values())
        # I3: the stable is the last completed; non-targeted nodes hold it.
        assert state.stable == self.stable
        stable_id = None if self.stable is None else self.stable.id
        if state.phase is not Phase.COMPLETED:
            assert {decision.desired[n] for n in enrolled - set(state.targeted)} <= {stable_id}
        # I5: deadlines only move forward within a step.
        if before is not None and before.release == state.release and before.step == state.step:
            for name in ("wave_deadline", "bake_until"):
                old, new = getattr(before, name), getattr(state, name)
                if old is not None and new is not None:
                    assert new >= old, name
        # I5: ... and a bake never ends before the end it had (a pause only adds time).
        if before is not None and before.release == state.release and before.bake_until:
            for e in decision.events:
                if e.kind == "bake.done" and e.step == before.step:
                    assert self.now >= before.bake_until
        # I6: never told to go backwards.
        for node, release in decision.desired.items():
            have = self.reports.get(node, NodeReport()).committed
            if release is not None and have is not None:
                assert self.sequences[release] >= self.sequences[have], (node, have, release)
        # I7: JSON round trip.
        assert RolloutState.from_json(state.to_json()) == state

    @invariant()
    def time_is_an_input(self) -> None:
        assert self.state.updated_at <= self.now


Rollouts.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_rollout_invariants = Rollouts.TestCase
