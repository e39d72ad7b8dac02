"""Retention of ``node_reports``: old rows go, the rows a node's view needs stay.

Example::

    pruner = ReportPruner(engine, retention=dt.timedelta(days=7), metrics=metrics)
    ctx.services.append(pruner)        # prunes shortly after start, then every 10 minutes
    prune_reports(engine, dt.timedelta(days=7), now=when)   # one pass, in tests

Invariants:

* Only rows older than the retention (``created_at < now - retention``) are
  deleted. The audit log, not ``node_reports``, is the durable history.
* A prune never changes what :func:`~konorkestra.center.nodes.state.node_state`
  shows: per (node, group) the applied row the view shows (highest sequence,
  newest of equals) and the newest ``applied``, ``refused`` and ``stale`` rows
  stay, however old. Per (node, group, process) the newest ``delivery`` and
  ``ack`` rows stay while the process is current: its newest delivery or ack
  names the release the group shows as applied, or is newer than that applied
  row, or the group has no applied row. A process last seen on an older
  release than the one applied since is gone and is pruned like any old row.
* The rows to keep are chosen in one read (no write lock); rows are then
  deleted in transactions of at most ``batch`` rows each, so the writer lock is
  held briefly. Rows written meanwhile are newer than the cutoff and only ever
  supersede kept rows, so the kept set stays sufficient.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.app.metrics import CenterMetrics
from konorkestra.center.store import schema
from konorkestra.center.store.engine import now as utcnow
from konorkestra.center.store.engine import reader

log = logging.getLogger(__name__)
NR = schema.node_reports
BATCH = 5000
PRUNE_INTERVAL = 600.0
FIRST_DELAY = 30.0
DEFAULT_RETENTION = dt.timedelta(hours=168)


@dataclass(frozen=True)
class Pruned:
    """What one pass did: rows deleted, old rows kept for the view, delete transactions."""

    deleted: int
    kept: int
    batches: int


def keep_ids(conn: Connection) -> set[int]:
    """Ids of the rows :func:`node_state` needs, whatever their age (see the invariants)."""
    keep: set[int] = set()
    newest = (
        sa.select(sa.func.max(NR.c.id))
        .where(NR.c.kind.in_(("applied", "refused", "stale")), NR.c.group.is_not(None))
        .group_by(NR.c.node_id, NR.c.group, NR.c.kind)
    )
    keep.update(conn.execute(newest).scalars())
    shown: dict[tuple[str, str], tuple[int, int, str | None]] = {}  # (seq, id, release)
    applied = sa.select(NR.c.id, NR.c.node_id, NR.c.group, NR.c.release_id, NR.c.body).where(
        NR.c.kind == "applied", NR.c.group.is_not(None)
    )
    for id_, node_id, group, release, body in conn.execute(applied):
        candidate = (int(body["sequence"]), id_, release)
        key = (node_id, group)
        if key not in shown or candidate[:2] > shown[key][:2]:
            shown[key] = candidate
    keep.update(seq_id_release[1] for seq_id_release in shown.values())
    pid = NR.c.body[("process", "pid")].as_string()
    start = NR.c.body[("process", "start_time")].as_string()
    last = (
        sa.select(sa.func.max(NR.c.id).label("id"))
        .where(NR.c.kind.in_(("delivery", "ack")), NR.c.group.is_not(None))
        .group_by(NR.c.node_id, NR.c.group, NR.c.kind, pid, start)
        .subquery()
    )
    rows = conn.execute(
        sa.select(NR.c.id, NR.c.node_id, NR.c.group, NR.c.release_id, pid, start).join_from(
            NR, last, NR.c.id == last.c.id
        )
    )
    processes: dict[tuple[str, str, object, object], list[tuple[int, str | None]]] = {}
    for id_, node_id, group, release, p, s in rows:
        processes.setdefault((node_id, group, p, s), []).append((id_, release))
    for (node_id, group, _, _), newest_rows in processes.items():
        newest_id, release = max(newest_rows)
        view = shown.get((node_id, group))
        if view is None or release == view[2] or newest_id > view[1]:
            keep.update(id_ for id_, _ in newest_rows)
    return keep


def prune_reports(
    engine: Engine,
    retention: dt.timedelta,
    *,
    now: dt.datetime | None = None,
    batch: int = BATCH,
) -> Pruned:
    """Delete ``node_reports`` rows older than ``retention`` that no node view needs."""
    cutoff = (now or utcnow()).astimezone(dt.UTC) - retention
    with reader(engine).connect() as conn:
        keep = keep_ids(conn)
    deleted = kept = batches = 0
    after = 0
    while True:
        with reader(engine).connect() as conn:
            ids = list(
                conn.execute(
                    sa.select(NR.c.id)
                    .where(NR.c.created_at < cutoff, NR.c.id > after)
                    .order_by(NR.c.id)
                    .limit(batch)
                ).scalars()
            )
        if not ids:
            break
        after = ids[-1]
        doomed = [i for i in ids if i not in keep]
        kept += len(ids) - len(doomed)
        if doomed:
            with engine.begin() as conn:  # takes the writer lock, for one batch only
                conn.execute(sa.delete(NR).where(NR.c.id.in_(doomed)))
            deleted += len(doomed)
            batches += 1
        if len(ids) < batch:
            break
    return Pruned(deleted, kept, batches)


class ReportPruner:
    """Runs :func:`prune_reports` every ``interval`` seconds; a Center ``Service``."""

    name = "report-pruner"

    def __init__(
        self,
        engine: Engine,
        *,
        retention: dt.timedelta = DEFAULT_RETENTION,
        metrics: CenterMetrics,
        interval: float = PRUNE_INTERVAL,
        first_delay: float = FIRST_DELAY,
    ) -> None:
        self.engine = engine
        self.retention = retention
        self.metrics = metrics
        self.interval = interval
        self.first_delay = first_delay
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def ready(self) -> tuple[bool, str]:
        return (True, "")  # pruning late never makes the Center unable to serve

    def run_once(self, *, now: dt.datetime | None = None) -> Pruned:
        """One pass: prune, count the rows in the metric, log a pass that deleted rows."""
        result = prune_reports(self.engine, self.retention, now=now)
        self.metrics.reports_pruned.inc(result.deleted)
        if result.deleted:
            log.info(
                "pruned %d node report rows older than %s in %d batches (%d old rows kept "
                "for node views)",
                result.deleted,
                self.retention,
                result.batches,
                result.kept,
            )
        return result

    async def _run(self) -> None:
        await asyncio.sleep(self.first_delay)
        while True:
            try:
                await asyncio.to_thread(self.run_once)
            except Exception as exc:  # the store may be briefly unavailable; try next time
                log.warning("pruning node reports failed: %s", exc)
            await asyncio.sleep(self.interval)
