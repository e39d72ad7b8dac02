"""What the nodes pages show: the fleet as a filtered, paged list, and one node's who-saw-what.

Example::

    query = NodeQuery.parse({"group": "checkout", "q": "web", "page": "2"})  # ValueError: 400
    listing = load_nodes(engine, query, Clock(now(), lifetime))  # one page of NodeRow
    detail = load_node(engine, "3f2a…", Clock(now(), lifetime))  # None: a 404 page

The pure rules (what a row says), each tested in ``tests/center/ui/test_nodes_page.py``:

1. **Freshness** of a node in a Group (:func:`freshness`): ``stale`` when its
   newest stale flag is true (C6), else ``current`` when it holds the Release
   the Group tells it to hold (D1: the rollout's per-node target, or the latest
   Release without a rollout; nothing to hold counts as current), else
   ``behind`` (C4).
2. **Certificate expiry** warns when less than :data:`CERT_WARN` is left, or
   less than a third of the Center's node certificate lifetime when that is
   shorter (agents renew at two thirds, so a node past that point missed its
   renewal; with the default 24 h certificates a fixed 7 days would flag every node).
3. The node page lists each process once (its pid and start time, N7), with
   every Group it asked for: what it was served and how it answered in each
   (:attr:`NodeRow.processes`); its ``ack`` summary is ``failed`` if any Group's
   newest ack failed, ``applied`` if every Group's applied, else ``none``.
4. The list is filtered by Group (exact) and text (a case-insensitive substring
   of the node's id, name or a ``key=value`` label), sorted by name, and paged
   :data:`PAGE_SIZE` rows at a time; a bad parameter is a :class:`ValueError`
   (the page answers 400).

The store reads (the I/O edge), a fixed number whatever the fleet's size:
every node's id, name, Groups and labels (what the filters and the sort
read); for the page's nodes only, their whole rows and each one's newest
``applied``, ``stale`` and ``refused`` row per Group, folded by
:func:`~konorkestra.center.nodes.fold.fold_node_state`
(an agent never applies a sequence below one it holds, trust rule R8, so the
newest applied row is the highest, N5); and the Groups' per-node targets
(:func:`~konorkestra.center.agentapi.entries.group_targets`). A node page reads
the node, its state (:func:`~konorkestra.center.nodes.state.load_node_state`,
as ``GET /v1/nodes/{id}`` does) and its Groups' targets.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.agentapi.entries import group_targets
from konorkestra.center.nodes.enrollment import read_node
from konorkestra.center.nodes.fold import (
    GroupState,
    NodeState,
    Process,
    ProcessKey,
    ProcessState,
    ReportRecord,
    fold_node_state,
)
from konorkestra.center.nodes.records import NodeRecord, node_record
from konorkestra.center.nodes.state import load_node_state, report_record
from konorkestra.center.pki.ca import DEFAULT_NODE_LIFETIME
from konorkestra.center.releases.desired import GroupTargets
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.model.types import ReleaseId

NR = schema.node_reports
PAGE_SIZE = 100
"""Nodes per list page."""
CERT_WARN = dt.timedelta(days=7)
MAX_TEXT = 200
_GROUP = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class NodeQuery:
    """The list's filters and page (rule 4)."""

    group: str | None = None
    text: str | None = None
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> NodeQuery:
        """From query parameters; a :class:`ValueError` names the bad one."""
        group = params.get("group") or None
        if group is not None and not _GROUP.match(group):
            raise ValueError(f"'group' must be a Group name, not {group[:80]!r}")
        text = (params.get("q") or "").strip() or None
        if text is not None and len(text) > MAX_TEXT:
            raise ValueError(f"'q' must be at most {MAX_TEXT} characters")
        page = params.get("page") or "1"
        if not page.isascii() or not page.isdigit() or not 1 <= int(page) <= 100_000:
            raise ValueError("'page' must be a whole number from 1")
        return cls(group, text, int(page))

    def matches(self, node: NodeRecord | Listed) -> bool:
        if self.group is not None and self.group not in node.groups:
            return False
        if self.text is None:
            return True
        needle = self.text.lower()
        hay = [node.id, node.name, *(f"{k}={v}" for k, v in node.labels.items())]
        return any(needle in h.lower() for h in hay)

    def link(self, page: int) -> str:
        """The list URL of ``page`` with the same filters."""
        params = {"group": self.group or "", "q": self.text or "", "page": str(page)}
        return "/ui/nodes?" + urlencode({k: v for k, v in params.items() if v})


@dataclass(frozen=True)
class Listed:
    """What the list filters and sorts on, read for every node (the rest only per page)."""

    id: str
    name: str
    groups: tuple[str, ...]
    labels: dict[str, str]


@dataclass(frozen=True)
class Holding:
    """What a node holds in one Group and how that compares with what it should hold."""

    group: str
    state: GroupState
    desired: ReleaseId | None
    freshness: str


@dataclass(frozen=True)
class NodeRow:
    """One node as the list and the node page show it."""

    node: NodeRecord
    holdings: tuple[Holding, ...]
    cert_warn: bool

    @property
    def revoked(self) -> bool:
        return self.node.revoked_at is not None

    @property
    def processes(self) -> tuple[ProcessRow, ...]:
        """Rule 3: one row per process, by pid then exe."""
        per: dict[ProcessKey, list[tuple[str, ProcessState]]] = {}
        for h in self.holdings:
            for p in h.state.processes:
                per.setdefault(p.process.key, []).append((h.group, p))
        rows = [ProcessRow(seen[0][1].process, tuple(seen)) for seen in per.values()]
        return tuple(sorted(rows, key=lambda r: (r.process.pid, r.process.exe or "")))


@dataclass(frozen=True)
class ProcessRow:
    """One process of a node and, per Group it asked for, what it saw and acked (rule 3)."""

    process: Process
    groups: tuple[tuple[str, ProcessState], ...]

    @property
    def client(self) -> str | None:
        return next((p.client for _, p in reversed(self.groups) if p.client), None)

    @property
    def ack(self) -> str:
        acks = [p.ack.status for _, p in self.groups if p.ack is not None]
        if any(a != "applied" for a in acks):
            return "failed"
        return "applied" if acks and len(acks) == len(self.groups) else "none"


@dataclass(frozen=True)
class NodeListing:
    """One page of the list (rule 4)."""

    rows: tuple[NodeRow, ...]
    matched: int
    total: int
    groups: tuple[str, ...]
    query: NodeQuery

    @property
    def pages(self) -> int:
        return max(1, -(-self.matched // PAGE_SIZE))


def freshness(state: GroupState | None, desired: ReleaseId | None) -> str:
    """Rule 1: ``stale``, ``current`` or ``behind``."""
    if state is not None and state.stale:
        return "stale"
    applied = None if state is None or state.applied is None else state.applied.release
    return "current" if desired is None or applied == desired else "behind"


@dataclass(frozen=True)
class Clock:
    """The time of the read and the Center's node certificate lifetime (rule 2)."""

    now: dt.datetime
    cert_lifetime: dt.timedelta = DEFAULT_NODE_LIFETIME


def cert_warns(not_after: dt.datetime | None, clock: Clock) -> bool:
    """Rule 2."""
    margin = min(CERT_WARN, clock.cert_lifetime / 3)
    return not_after is not None and not_after - clock.now < margin


def node_row(
    node: NodeRecord, state: NodeState, targets: Mapping[str, GroupTargets], clock: Clock
) -> NodeRow:
    """A node and its folded state, judged against its Groups' targets (rules 1, 2)."""
    holdings = []
    for g in state.groups:
        target = targets.get(g.group)
        row = None if target is None else target.row_for(node.id)
        desired = None if row is None else row.release_id
        holdings.append(Holding(g.group, g, desired, freshness(g, desired)))
    return NodeRow(node, tuple(holdings), cert_warns(node.cert_not_after, clock))


# -- the store reads -----------------------------------------------------------------


def load_nodes(engine: Engine, query: NodeQuery, clock: Clock) -> NodeListing:
    """One page of the list: node rows, their newest report rows, their Groups' targets."""
    nodes = sorted(_listed(engine), key=lambda n: (n.name, n.id))
    groups = tuple(sorted({g for n in nodes for g in n.groups}))
    matched = [n for n in nodes if query.matches(n)]
    start = (query.page - 1) * PAGE_SIZE
    shown = _records(engine, [n.id for n in matched[start : start + PAGE_SIZE]])
    states = _newest_states(engine, shown)
    targets = _targets(engine, {g for n in shown for g in n.groups})
    rows = tuple(node_row(n, states[n.id], targets, clock) for n in shown)
    return NodeListing(rows, len(matched), len(nodes), groups, query)


def load_node(engine: Engine, node_id: str, clock: Clock) -> NodeRow | None:
    """One node with its whole state (processes, deliveries, acks); ``None`` if unknown."""
    node = read_node(engine, node_id)
    if node is None:
        return None
    state = load_node_state(engine, node.id, list(node.groups))
    return node_row(node, state, _targets(engine, {g.group for g in state.groups}), clock)


def _listed(engine: Engine) -> list[Listed]:
    """Every node's id, name, Groups and labels: all the list filters and sorts on."""
    n = schema.nodes.c
    with reader(engine).connect() as conn:  # read-only: no write lock
        rows = conn.execute(sa.select(n.id, n.name, n.groups, n.labels)).all()
    return [Listed(r.id, r.name or "", tuple(r.groups or ()), dict(r.labels or {})) for r in rows]


def _records(engine: Engine, ids: list[str]) -> list[NodeRecord]:
    """The whole records of one page's nodes, in ``ids`` order."""
    if not ids:
        return []
    n = schema.nodes
    with reader(engine).connect() as conn:
        found = {r.id: node_record(r) for r in conn.execute(sa.select(n).where(n.c.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def _targets(engine: Engine, groups: Collection[str]) -> dict[str, GroupTargets]:
    return {t.group: t for t in group_targets(engine, groups)}


def _newest_states(engine: Engine, nodes: list[NodeRecord]) -> dict[str, NodeState]:
    """Each node's state from its newest applied, stale and refused row per Group (one query)."""
    per: defaultdict[str, list[ReportRecord]] = defaultdict(list)
    if nodes:
        newest = (
            sa.select(sa.func.max(NR.c.id))
            .where(
                NR.c.node_id.in_([n.id for n in nodes]),
                NR.c.kind.in_(("applied", "stale", "refused")),
                NR.c.group.is_not(None),
            )
            .group_by(NR.c.node_id, NR.c.group, NR.c.kind)
        )
        with reader(engine).connect() as conn:  # read-only: no write lock
            rows = conn.execute(
                sa.select(NR.c.node_id, NR.c.kind, NR.c.group, NR.c.body)
                .where(NR.c.id.in_(newest))
                .order_by(NR.c.id)
            ).all()
        for node_id, kind, group, body in rows:
            per[node_id].append(report_record(kind, group, body))
    return {n.id: fold_node_state(per[n.id], n.groups) for n in nodes}
