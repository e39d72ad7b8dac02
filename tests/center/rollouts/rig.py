"""A real store with nodes, Releases and agent reports, for driving rollout steps at chosen times.

Example::

    rig = Rig.create(opened, nodes=10, policy=canary(steps=((10, 60), (50, 60), (100, 0))))
    first = rig.release(1)                      # signed and stored by the real Releaser
    rig.step(at=0)                              # one runner decision at T0 + 0 s
    rig.commit(node, first, acks=["applied"])   # what an agent would report, stored for real
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from konorkestra.center.agentapi.entries import group_targets
from konorkestra.center.agentapi.reportrows import store_reports
from konorkestra.center.agentapi.reports import parse_report
from konorkestra.center.app.datadir import Opened
from konorkestra.center.releases.signer import ReleasePlan, Releaser
from konorkestra.center.rollouts import store
from konorkestra.center.rollouts.fleet import MetricMemory
from konorkestra.center.rollouts.fleetmemory import FleetMemories
from konorkestra.center.rollouts.step import Moved, Quiet, step_group
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.model.definitions import Guard, Policy, Step
from konorkestra.model.release import ConfigSetRef, PolicyRef, Release
from konorkestra.model.types import ConfigSetName, Digest, GroupName, PolicyName

SHA = "d" * 40
T0 = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)
GROUP = "checkout"


def canary(
    steps: tuple[tuple[int, int], ...] = ((10, 60), (50, 60), (100, 0)),
    *,
    guards: tuple[tuple[str, float], ...] = (("failed_acks", 0), ("ack_success_rate", 1)),
    approval: str = "auto",
    on_failure: str = "rollback",
) -> Policy:
    return Policy(
        PolicyName("canary"),
        "canary",
        tuple(Step(p, b) for p, b in steps),
        tuple(Guard(s, t) for s, t in guards),
        on_failure,  # type: ignore[arg-type]
        approval,  # type: ignore[arg-type]
    )


@dataclass
class Rig:
    opened: Opened
    releaser: Releaser
    nodes: list[str]
    policy: Policy
    fleets: FleetMemories | None = None
    """Set (with ``quiet``) to step as the runner does: fleets kept, quiet Groups skipped."""
    quiet: dict[str, Quiet] | None = None

    @classmethod
    def create(cls, opened: Opened, *, nodes: int, policy: Policy) -> Rig:
        names = [f"n{i:02d}" for i in range(nodes)]
        with opened.engine.begin() as conn:
            conn.execute(sa.insert(schema.commits).values(
                sha=SHA, parent=None, branch="main", author="Ana", subject="s",
                status="accepted", diagnostics=[], committed_at=T0, ingested_at=T0,
            ))  # fmt: skip
            for name in names:
                conn.execute(sa.insert(schema.nodes).values(
                    id=name, name=name, groups=[GROUP], labels={"zone": "eu-1"}, created_at=T0
                ))  # fmt: skip
        releaser = Releaser([opened.signers["release"]], source_repo="test-repo")
        return cls(opened, releaser, names, policy)

    @property
    def engine(self) -> sa.Engine:
        return self.opened.engine

    def release(self, version: int, policy: Policy | None = None) -> Release:
        """A new Release of checkout (content ``version``) under ``policy``."""
        pol = policy or self.policy
        body = pol.canonical_dict()
        member = ConfigSetRef(ConfigSetName("checkout-api"), version,
                              Digest("sha256:" + f"{version:064x}"), 10)  # fmt: skip
        plan = ReleasePlan(group=GroupName(GROUP), members=(member,),
                           policy=PolicyRef(pol.name, pol.digest(), pol.strategy),
                           policy_body=body, source_commit=SHA, author="Ana", committed_at=T0,
                           created_by="alice", origin="ingest")  # fmt: skip
        with self.engine.begin() as conn:
            return self.releaser.insert(conn, plan)

    def second_rollout(self) -> tuple[Release, Release]:
        """Release 1 rolled out to every node and completed; Release 2's rollout started
        (at T0 + 2 s). Both Releases."""
        first = self.release(1)
        self.step(at=0)
        for node in self.nodes:
            self.commit(node, first, ["applied"])
        self.step(at=1)
        second = self.release(2)
        self.step(at=2)
        return first, second

    def step(self, at: float, memory: MetricMemory | None = None) -> Moved:
        """One runner decision at ``T0 + at`` seconds (retried like the runner does)."""
        for _ in range(3):
            when = T0 + dt.timedelta(seconds=at)
            moved = step_group(
                self.engine, self.releaser, GROUP, when, memory, self.fleets, self.quiet
            )
            if not moved.retry:
                return moved
        raise AssertionError("the step kept retrying")

    def row(self) -> store.RolloutRow:
        with reader(self.engine).connect() as conn:
            found = store.current(conn, GROUP)
        assert found is not None
        return found

    def desired(self) -> dict[str, str | None]:
        """What each node is offered by the long-poll's loader (release id or None)."""
        [targets] = group_targets(self.engine, [GROUP])
        return {n: (None if (r := targets.row_for(n)) is None else r.release_id)
                for n in self.nodes}  # fmt: skip

    def commit(self, node: str, release: Release, acks: Sequence[str] = (), at: float = 0) -> None:
        """``node``'s agent committed ``release`` and its processes acked it."""
        when = (T0 + dt.timedelta(seconds=at)).timestamp()
        events: list[dict[str, Any]] = []
        for pid, status in enumerate(acks, start=100):
            proc = {"pid": pid, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app", "start_time": 1}
            common = {"group": GROUP, "process": proc, "client": "web", "release": release.id}
            events.append({"kind": "delivery", "at": when, **common,
                           "sequence": release.sequence, "via": "watch"})  # fmt: skip
            events.append({"kind": "ack", "at": when, **common, "status": status,
                           "error": None if status == "applied" else "boom"})  # fmt: skip
        body = {"applied": [{"group": GROUP, "release": release.id, "sequence": release.sequence,
                             "digest": release.digest, "at": when}], "events": events}  # fmt: skip
        store_reports(self.engine, [(node, parse_report(body))])

    def metric(self, node: str, name: str, value: float, at: float, pid: int = 100) -> None:
        """``node``'s process ``pid`` reported ``name`` = ``value`` (SDK ``report()``)."""
        proc = {"pid": pid, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app", "start_time": 1}
        event = {"kind": "report", "at": (T0 + dt.timedelta(seconds=at)).timestamp(),
                 "group": GROUP, "process": proc, "client": "web", "metric": name,
                 "value": value}  # fmt: skip
        store_reports(self.engine, [(node, parse_report({"events": [event]}))])

    def audit(self) -> list[tuple[str, str, dict[str, Any]]]:
        with reader(self.engine).connect() as conn:
            rows = conn.execute(
                sa.select(
                    schema.audit.c.actor, schema.audit.c.action, schema.audit.c.details
                ).order_by(schema.audit.c.seq)
            ).all()
        return [(a, b, dict(c)) for a, b, c in rows]

    def events(self) -> list[str]:
        skip = ("node.", "release.")
        return [action for _, action, _ in self.audit() if not action.startswith(skip)]
