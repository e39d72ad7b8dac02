"""Random rounds of what changes a Group's fleet, applied to a real store.

Example::

    @given(rounds=ROUNDS)
    def test_x(rounds):
        with fleet_world() as world:
            for ops in rounds:
                world.apply(ops)          # reports, enrollments, revocations, Releases, prunes
                ...                       # compare an incremental read with a fresh one

An op is data (hypothesis draws it): ``("report", node, items)`` stores one agent
report through the real report path (``applied``, ``refused``, ``delivery``, ``ack``,
``metric`` and ``stale`` items of ``checkout`` or ``search``, naming one of the
Group's Releases or an unknown one); ``("enroll", groups)`` and ``("revoke", node)``
change the nodes; ``("release",)`` signs a new Release of ``checkout``;
``("prune",)`` runs report retention with a zero retention; ``("tick",)`` moves
the memories' clock past their maximum age.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import strategies as st

from konorkestra.center.agentapi.reportrows import store_reports
from konorkestra.center.agentapi.reports import parse_report
from konorkestra.center.app.datadir import Opened, open_data_dir
from konorkestra.center.store import schema
from konorkestra.center.store.engine import now
from konorkestra.center.store.retention import prune_reports
from konorkestra.model.release import Release
from tests.center.rollouts.rig import T0, Rig, canary

KINDS = ("applied", "refused", "delivery", "ack", "metric", "stale")
ITEM = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 4),  # which Release (past the known ones: an unknown id)
    st.sampled_from([100, 101]),  # pid
    st.booleans(),  # ack applied / stale flag
    st.sampled_from(["checkout", "checkout", "search"]),
)
OP = st.one_of(
    st.tuples(st.just("report"), st.integers(0, 9), st.lists(ITEM, min_size=1, max_size=4)),
    st.tuples(st.just("report"), st.integers(0, 9), st.lists(ITEM, min_size=1, max_size=4)),
    st.tuples(
        st.just("enroll"), st.sampled_from([("checkout",), ("search",), ("search", "checkout")])
    ),
    st.tuples(st.just("revoke"), st.integers(0, 9)),
    st.just(("release",)),
    st.just(("prune",)),
    st.just(("tick",)),
)
ROUNDS = st.lists(st.lists(OP, max_size=8), min_size=1, max_size=6)

SCRIPT = [  # the same on every store: a test that can run on PostgreSQL too
    [("report", 0, [("applied", 0, 100, True, "checkout"), ("ack", 0, 100, True, "checkout")])],
    [("report", 1, [("delivery", 0, 101, True, "checkout"), ("ack", 0, 101, False, "checkout")]),
     ("report", 2, [("stale", 0, 100, True, "checkout"), ("metric", 0, 100, True, "checkout")])],
    [("release",), ("report", 0, [("applied", 1, 100, True, "checkout")]), ("prune",)],
    [("enroll", ("checkout",)), ("revoke", 2), ("report", 4, [("ack", 1, 100, True, "checkout")])],
    [("tick",), ("report", 3, [("refused", 1, 100, True, "checkout")])],
]  # fmt: skip


class Clock:
    """The memories' clock: moves only on a ``tick``."""

    def __init__(self) -> None:
        self.at = 0.0

    def __call__(self) -> float:
        return self.at


@dataclass
class World:
    rig: Rig
    clock: Clock = field(default_factory=Clock)
    releases: list[Release] = field(default_factory=list)
    since: dt.datetime = field(default_factory=lambda: now() - dt.timedelta(hours=1))
    _at: float = 0.0

    @classmethod
    def of(cls, opened: Opened, nodes: int = 4) -> World:
        """``nodes`` nodes of ``checkout`` and one Release in ``opened``'s store."""
        world = cls(Rig.create(opened, nodes=nodes, policy=canary()))
        world.apply([("release",)])
        return world

    @property
    def engine(self) -> sa.Engine:
        return self.rig.engine

    def apply(self, ops: Sequence[tuple[Any, ...]]) -> None:
        for op in ops:
            getattr(self, "_" + op[0])(*op[1:])

    def _release(self) -> None:
        self.releases.append(self.rig.release(len(self.releases) + 1))

    def _tick(self) -> None:
        self.clock.at += 31.0

    def _prune(self) -> None:
        prune_reports(self.engine, dt.timedelta(0), now=now() + dt.timedelta(seconds=1))

    def _enroll(self, groups: tuple[str, ...]) -> None:
        name = f"e{len(self.rig.nodes):02d}"
        with self.engine.begin() as conn:
            conn.execute(sa.insert(schema.nodes).values(
                id=name, name=name, groups=list(groups), labels={"zone": "eu-2"}, created_at=T0
            ))  # fmt: skip
        self.rig.nodes.append(name)

    def _revoke(self, node: int) -> None:
        n = schema.nodes
        name = self.rig.nodes[node % len(self.rig.nodes)]
        with self.engine.begin() as conn:
            conn.execute(sa.update(n).where(n.c.id == name).values(revoked_at=now()))

    def _report(self, node: int, items: list[tuple[str, int, int, bool, str]]) -> None:
        body: dict[str, Any] = {"applied": [], "refused": [], "events": [], "stale": {}}
        for kind, which, pid, flag, group in items:
            self._at += 1
            at = T0.timestamp() + self._at
            if which < len(self.releases):
                release, sequence = self.releases[which].id, int(self.releases[which].sequence)
            else:
                release, sequence = f"{group}-{90 + which}-{'f' * 16}", 90 + which
            proc = {"pid": pid, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app",
                    "start_time": 1}  # fmt: skip
            common = {"at": at, "group": group, "process": proc, "client": "web"}
            if kind == "applied":
                body["applied"].append({"group": group, "release": release,
                                        "sequence": sequence, "at": at})  # fmt: skip
            elif kind == "refused":
                refusal = {"group": group, "release": release, "sequence": sequence,
                           "code": "BadSignature", "reason": "no", "at": at}  # fmt: skip
                body["refused"].append(refusal)
            elif kind == "delivery":
                body["events"].append({"kind": "delivery", **common, "release": release,
                                       "sequence": sequence, "via": "watch"})  # fmt: skip
            elif kind == "ack":
                body["events"].append({"kind": "ack", **common, "release": release,
                                       "status": "applied" if flag else "failed",
                                       "error": None if flag else "boom"})  # fmt: skip
            elif kind == "metric":
                body["events"].append({"kind": "report", **common, "metric": "error_rate",
                                       "value": float(pid % 7)})  # fmt: skip
            else:
                body["stale"][group] = flag
        name = self.rig.nodes[node % len(self.rig.nodes)]
        store_reports(self.engine, [(name, parse_report(body))])


@contextmanager
def fleet_world(nodes: int = 4) -> Iterator[World]:
    """A fresh SQLite store with ``nodes`` nodes of ``checkout`` and one Release."""
    with tempfile.TemporaryDirectory(prefix="fleetmemory-") as tmp:
        opened = open_data_dir(Path(tmp) / "data")
        try:
            yield World.of(opened, nodes)
        finally:
            opened.engine.dispose()
