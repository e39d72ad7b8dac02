"""What the audit page lists: the log newest first, filtered, a page at a time by ``seq``.

Example::

    query = AuditQuery.parse({"action": "node.*", "actor": "alice", "before": "900"})
    page = load_audit(engine, query)      # page.events (newest first), page.older (a cursor)
    query.link(before=page.older)         # "/ui/audit?action=node.%2A&actor=alice&before=851"

Rules, each tested in ``tests/center/ui/test_audit_page.py``:

1. ``action`` is an action name (``node.revoked``) or a family (``node.*``);
   ``actor`` a case-insensitive substring of the actor; ``group`` the Group an
   event names (its ``details.group``); ``since`` keeps events after that seq;
   ``before`` (the page cursor) those before it. Anything else, or a value of
   the wrong shape, is a :class:`ValueError` (the page answers 400).
2. A page holds at most :data:`PAGE_SIZE` events, newest first; ``older`` is
   the cursor of the next page when there is one (``None`` at the end).
3. One read connection, two queries (the head, the page), whatever the log's
   size; the page's query walks the primary key from ``before`` down. With an
   action, actor or Group filter it reads at most :data:`SCAN_ROWS` events
   below the cursor: a page with fewer matches says which seqs it searched
   (``searched``) and links to the older ones, so a rare match never makes
   one request read the whole log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.store import schema
from konorkestra.center.store.audit import AuditEvent, audit_event
from konorkestra.center.store.engine import reader

A = schema.audit
PAGE_SIZE = 50
SCAN_ROWS = 20_000
"""Events one filtered page reads at most (rule 3)."""
MAX_SEQ = 2**62
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$")
_GROUP = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _seq(params: Mapping[str, str], name: str, lo: int) -> int | None:
    text = params.get(name) or None
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 19 or not lo <= int(text) < MAX_SEQ:
        raise ValueError(f"{name!r} must be an event seq (a whole number from {lo})")
    return int(text)


@dataclass(frozen=True)
class AuditQuery:
    """The page's filters and cursor (rule 1)."""

    action: str | None = None
    actor: str | None = None
    group: str | None = None
    since: int | None = None
    before: int | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> AuditQuery:
        """From query parameters; a :class:`ValueError` names the bad one."""
        action = (params.get("action") or "").strip() or None
        if action is not None and (len(action) > 80 or not _ACTION.match(action)):
            raise ValueError("'action' must be an action (node.revoked) or a family (node.*)")
        actor = (params.get("actor") or "").strip() or None
        if actor is not None and len(actor) > 200:
            raise ValueError("'actor' must be at most 200 characters")
        group = params.get("group") or None
        if group is not None and not _GROUP.match(group):
            raise ValueError(f"'group' must be a Group name, not {group[:80]!r}")
        return cls(action, actor, group, _seq(params, "since", 0), _seq(params, "before", 1))

    @property
    def filtered(self) -> bool:
        return self.narrowed or self.since is not None

    @property
    def narrowed(self) -> bool:
        """Whether a filter needs each row read (rule 3)."""
        return any(v is not None for v in (self.action, self.actor, self.group))

    def link(self, *, before: int | None = None) -> str:
        """This query's URL with the cursor ``before`` (``None``: the newest page)."""
        q = replace(self, before=before)
        params = {"action": q.action, "actor": q.actor, "group": q.group, "since": q.since,
                  "before": q.before}  # fmt: skip
        text = urlencode({k: v for k, v in params.items() if v is not None})
        return "/ui/audit" + (f"?{text}" if text else "")

    def with_action(self, action: str) -> str:
        """The newest page of this query narrowed to ``action``."""
        return replace(self, action=action).link()

    def where(self) -> list[sa.ColumnElement[bool]]:
        out: list[sa.ColumnElement[bool]] = []
        if self.action is not None:
            if self.action.endswith(".*"):
                out.append(A.c.action.startswith(self.action[:-1], autoescape=True))
            else:
                out.append(A.c.action == self.action)
        if self.actor is not None:
            out.append(sa.func.lower(A.c.actor).contains(self.actor.lower(), autoescape=True))
        if self.group is not None:
            out.append(A.c.details["group"].as_string() == self.group)
        return out


@dataclass(frozen=True)
class AuditPage:
    """One page of the log (rule 2)."""

    events: tuple[AuditEvent, ...]
    older: int | None
    head_seq: int
    query: AuditQuery
    searched: tuple[int, int] | None = None
    """``(lowest, highest)`` seq read when the scan stopped short of a full page."""


def load_audit(engine: Engine, query: AuditQuery) -> AuditPage:
    """The page of ``query``: newest first, :data:`PAGE_SIZE` at most (rule 3)."""
    since = query.since or 0
    with reader(engine).connect() as conn:  # read-only: no write lock
        head = int(conn.execute(sa.select(sa.func.max(A.c.seq))).scalar() or 0)
        top = head + 1 if query.before is None else min(query.before, head + 1)
        floor = max(since, top - 1 - SCAN_ROWS) if query.narrowed else since
        rows = conn.execute(
            sa.select(A)
            .where(A.c.seq < top, A.c.seq > floor, *query.where())
            .order_by(A.c.seq.desc())
            .limit(PAGE_SIZE + 1)
        ).all()
    events = tuple(audit_event(r._mapping) for r in rows[:PAGE_SIZE])
    if len(rows) > PAGE_SIZE:
        return AuditPage(events, events[-1].seq, head, query)
    if floor > since:  # the scan stopped short: the older events are the next page
        return AuditPage(events, floor + 1, head, query, (floor + 1, top - 1))
    return AuditPage(events, None, head, query)


def links(event: AuditEvent) -> list[tuple[str, str]]:
    """Dashboard pages an event names: ``(label, href)`` for its node, Group, Release."""
    d = event.details
    out: list[tuple[str, str]] = []
    node = d.get("node_id", d.get("node"))
    if isinstance(node, str) and node:
        out.append((f"node {node}", f"/ui/nodes/{node}"))
    group = d.get("group")
    if isinstance(group, str) and _GROUP.match(group):
        out.append((f"rollout {group}", f"/ui/rollouts/{group}"))
    release = d.get("release", d.get("release_id"))
    if isinstance(release, str) and release:
        out.append((f"release {release}", f"/ui/releases/{release}"))
    return out
