"""Group commit for agent reports: many nodes' reports and ``last_seen`` updates per transaction.

Example::

    writer = ReportWriter(engine)
    ctx.services.append(writer)                    # runs while the app serves
    stored = await writer.store(node_id, report)   # answers once its batch committed
    writer.touch(node_id)                          # last_seen, in the next batch

Invariants:

* :meth:`ReportWriter.store` returns only after the transaction holding the
  report has committed: an agent that got its answer may forget the report.
* One writer task; each batch is everything that arrived while the previous
  one was written (:func:`~konorkestra.center.agentapi.reportrows.store_reports`, one
  transaction), so a burst of reports costs a few transactions, not one each.
* A batch that fails is retried one report at a time, so one bad report fails
  only its own request. ``touch`` is best effort (``last_seen`` only).
* Not started (no event loop task): ``store`` writes directly, in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from konorkestra.center.agentapi.reportrows import store_reports
from konorkestra.center.agentapi.reports import Report

log = logging.getLogger(__name__)
MAX_BATCH = 500


class ReportWriter:
    """Writes agent reports in batches; a Center ``Service``."""

    name = "report-writer"

    def __init__(self, engine: Engine, *, max_batch: int = MAX_BATCH) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._pending: list[tuple[str, Report, asyncio.Future[int]]] = []
        self._touched: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._write_all()  # what arrived last is still written

    def ready(self) -> tuple[bool, str]:
        return (self._task is not None, "" if self._task is not None else "not started")

    async def store(self, node_id: str, report: Report) -> int:
        """Store ``report`` in the next batch; the number of rows written."""
        if self._task is None or self._wake is None:
            return (await run_in_threadpool(store_reports, self.engine, [(node_id, report)]))[0]
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((node_id, report, done))
        self._wake.set()
        return await done

    def touch(self, node_id: str) -> None:
        """Set ``last_seen`` of ``node_id`` with the next batch."""
        self._touched.add(node_id)
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._write_all()

    async def _write_all(self) -> None:
        while self._pending or self._touched:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            touched, self._touched = self._touched, set()
            await self._write(batch, touched)

    async def _write(
        self, batch: list[tuple[str, Report, asyncio.Future[int]]], touched: set[str]
    ) -> None:
        items = [(node_id, report) for node_id, report, _ in batch]
        try:
            counts = await run_in_threadpool(store_reports, self.engine, items, touched=touched)
        except Exception as exc:
            if len(batch) <= 1:
                log.warning("storing a report failed: %s", exc)
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                return
            log.warning("storing %d reports failed (%s); storing them one by one", len(batch), exc)
            for one in batch:
                await self._write([one], set())
            return
        self.batches += 1
        for (_, _, done), count in zip(batch, counts, strict=True):
            if not done.done():
                done.set_result(count)
