"""Center replicas on one PostgreSQL tell each other what changed: LISTEN/NOTIFY, polled backup.

Example (what :func:`konorkestra.center.app.server.build` wires on PostgreSQL)::

    bus = Broadcast(engine)                          # a Center Service
    releaser.listeners.append(bus.released)          # after commit: NOTIFY the others
    bus.receivers.append(on_event)                   # called on the loop for their events
    ctx.services.append(bus)

Invariants:

* Sending: :meth:`Broadcast.publish` is called *after* the change committed,
  from any thread; it never blocks and never raises. A task sends the queued
  payloads with ``pg_notify`` on a connection of its own, one transaction per
  batch; while the store is unreachable it keeps them (at most
  :data:`MAX_QUEUED`, oldest dropped) and retries with backoff. A payload
  equal to one still waiting (not yet taken into a batch) is not queued again:
  events are idempotent, and a receiver woken by the first reads the store
  after both changes committed. A
  stop sends what is queued first (for at most :data:`FLUSH_TIMEOUT` seconds).
* Receiving: every replica LISTENs on :data:`CHANNEL` on a dedicated psycopg
  connection, reconnecting with jittered backoff (:data:`MAX_BACKOFF`). Each
  payload (:mod:`.busevents`) from *another* replica goes to every receiver on
  the event loop; a replica's own payloads are skipped (it delivered them in
  process already). A receiver that raises is logged; the others still run.
* Nothing is lost while LISTEN is broken: every change we broadcast also writes
  an audit record (rule E4 of :mod:`.busevents`). ``covered`` is an audit
  ``seq`` up to which every event has reached this replica; while LISTEN is up
  it trails the audit head by one poll interval (slack for a NOTIFY sent just
  after its commit). While LISTEN is down, the poll task reads the audit
  records after ``covered`` every ``poll_interval`` seconds and delivers their
  events; after LISTEN is back (LISTEN first, then the read) it catches up once
  more. Events are idempotent (E5), so the overlap costs a second wake-up, never
  a wrong answer.
* A crash between a commit and its NOTIFY loses that one notification for the
  other replicas while their LISTEN is up; what bounds it is each receiver's own
  backstop (the node cache's expiry, the long-poll's timeout), as for a
  single Center before this module.
* On SQLite there is one Center and no broadcast: :func:`build` is not called.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.store import schema
from konorkestra.center.store.busevents import (
    Event,
    NodeChanged,
    Released,
    decode,
    encode,
    from_audit,
)
from konorkestra.center.store.engine import reader

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)
CHANNEL = "konorkestra"
MAX_QUEUED = 100_000
MAX_BACKOFF = 5.0
FLUSH_TIMEOUT = 2.0
_PAGE = 2000
LISTENER, NOTIFIER = "konorkestra-listen", "konorkestra-notify"
"""``application_name`` of the two connections, ``-<origin>`` appended (``pg_stat_activity``)."""


def conninfo_of(engine: Engine) -> str:
    """A libpq connection string for ``engine``'s PostgreSQL (psycopg, not SQLAlchemy)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


Sample = tuple[int, int]
"""``(audit head, LISTEN epoch)`` read at one poll tick while LISTEN was up."""


def advanced(covered: int, previous: Sample | None, current: Sample) -> int:
    """The high-water mark after a tick with LISTEN up (pure).

    It moves to the head read one tick earlier, and only if LISTEN has stayed up
    since (the same epoch): every record up to that head committed a whole poll
    interval ago, while this replica was listening, so its NOTIFY has arrived.
    """
    if previous is None or previous[1] != current[1]:
        return covered
    return max(covered, previous[0])


class Broadcast:
    """LISTEN/NOTIFY between Center replicas, with an audit-log poll fallback; a Service."""

    name = "replica-broadcast"

    def __init__(
        self,
        engine: Engine,
        *,
        origin: str | None = None,
        poll_interval: float = 2.0,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.engine, self.conninfo = engine, conninfo_of(engine)
        self.origin = origin or secrets.token_hex(4)
        self.poll_interval, self.max_backoff = poll_interval, max_backoff
        self.receivers: list[Callable[[Event], None]] = []
        """Called on the event loop for each event another replica sent (or the poll found)."""
        self.listening = False
        self.sent = self.received = self.polled = 0
        self._epoch = 0
        self._covered = 0
        self._sample: Sample | None = None
        self._outbox: deque[str] = deque(maxlen=MAX_QUEUED)
        self._queued: set[str] = set()
        self._has_mail: asyncio.Event | None = None
        self._flushed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- sending -----------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Tell the other replicas about ``event`` (committed); thread-safe, never raises."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        payload = encode(self.origin, event)
        with contextlib.suppress(RuntimeError):  # the loop is closing
            if _running_loop() is loop:
                self._queue(payload)  # at once: a stop that follows sends it
            else:
                loop.call_soon_threadsafe(self._queue, payload)

    def released(self, group: str, sequence: int) -> None:
        """A :class:`~konorkestra.center.releases.signer.Releaser` listener."""
        self.publish(Released(group, sequence))

    def node_changed(self, node_id: str) -> None:
        """An enrollment listener: a node row was written here."""
        self.publish(NodeChanged(node_id))

    def _queue(self, payload: str) -> None:
        if payload in self._queued:
            return  # the same event is already waiting: one send serves both (rule E5)
        if len(self._outbox) == self._outbox.maxlen:
            self._queued.discard(self._outbox[0])
        self._outbox.append(payload)
        self._queued.add(payload)
        self._flushed.clear()
        if self._has_mail is not None:
            self._has_mail.set()

    async def _send(self) -> None:
        import psycopg  # the `postgres` extra: imported only by a Center on PostgreSQL

        assert self._has_mail is not None
        conn: psycopg.AsyncConnection[object] | None = None
        backoff = 0.05
        try:
            while True:
                await self._has_mail.wait()
                self._has_mail.clear()
                while self._outbox:
                    batch = list(self._outbox)
                    # A change committed from now on may not be seen by a receiver woken
                    # by this batch: its equal payload must be queued again, not merged.
                    self._queued.clear()
                    try:
                        if conn is None or conn.closed:
                            conn = await psycopg.AsyncConnection.connect(
                                self.conninfo,
                                connect_timeout=5,
                                application_name=f"{NOTIFIER}-{self.origin}",
                            )
                        async with conn.transaction(), conn.cursor() as cur:
                            await cur.executemany(
                                "SELECT pg_notify(%s, %s)", [(CHANNEL, p) for p in batch]
                            )
                    except (psycopg.Error, OSError) as exc:
                        log.warning("cannot NOTIFY the other Centers (retrying): %s", exc)
                        if conn is not None:
                            await conn.close()
                        conn = None
                        await asyncio.sleep(_jitter(backoff))  # backoff, not a wait for a state
                        backoff = min(backoff * 2, self.max_backoff)
                        continue
                    backoff = 0.05
                    for _ in batch:
                        self._outbox.popleft()
                    self.sent += len(batch)
                    if not self._outbox:
                        self._flushed.set()
        finally:
            if conn is not None:
                await conn.close()

    # --- receiving ---------------------------------------------------------------------

    def _deliver(self, event: Event) -> None:
        for receiver in self.receivers:
            try:
                receiver(event)
            except Exception:
                log.exception("broadcast receiver failed for %s", event)

    def _on_payload(self, payload: str) -> None:
        decoded = decode(payload)
        if decoded is None:
            log.debug("ignored broadcast payload %r", payload[:200])
            return
        origin, event = decoded
        if origin != self.origin:
            self.received += 1
            self._deliver(event)

    async def _listen(self) -> None:
        import psycopg  # the `postgres` extra: imported only by a Center on PostgreSQL

        backoff = 0.05
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=f"{LISTENER}-{self.origin}",
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening, self._epoch = True, self._epoch + 1
                    log.info("listening for the other Centers' changes (%s)", CHANNEL)
                    backoff = 0.05
                    await self._catch_up()  # what happened while LISTEN was down
                    while True:
                        async for note in conn.notifies(timeout=self.poll_interval):
                            self._on_payload(note.payload)
                        await conn.execute("SELECT 1")  # a dead connection raises here
            except (psycopg.Error, OSError, sa.exc.SQLAlchemyError) as exc:
                if self.listening:
                    log.warning("LISTEN connection lost (%s); polling the store every %.1f s "
                                "until it is back", exc, self.poll_interval)  # fmt: skip
            finally:
                self.listening = False
            await asyncio.sleep(_jitter(backoff))  # reconnect backoff
            backoff = min(backoff * 2, self.max_backoff)

    # --- the poll fallback -------------------------------------------------------------

    def _head(self) -> int:
        with reader(self.engine).connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(schema.audit.c.seq))).scalar() or 0)

    def _since(self, after: int) -> list[tuple[int, str, object]]:
        A = schema.audit
        with reader(self.engine).connect() as conn:
            rows = conn.execute(
                sa.select(A.c.seq, A.c.action, A.c.details)
                .where(A.c.seq > after)
                .order_by(A.c.seq)
                .limit(_PAGE)
            )
            return [(int(r.seq), str(r.action), r.details) for r in rows]

    async def _catch_up(self) -> None:
        """Deliver the events of audit records after ``covered`` (each distinct one once)."""
        while True:
            rows = await asyncio.to_thread(self._since, self._covered)
            events: dict[Event, None] = {}
            for _seq, action, details in rows:
                event = from_audit(action, details if isinstance(details, dict) else {})
                if event is not None:
                    events[event] = None
            for event in events:
                self.polled += 1
                self._deliver(event)
            if rows:
                self._covered = max(self._covered, rows[-1][0])  # two catch-ups may overlap
            if len(rows) < _PAGE:
                return

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)  # the poll timer
            try:
                if not self.listening:
                    self._sample = None
                    await self._catch_up()
                    continue
                epoch = self._epoch  # before the read: the head is one LISTEN of this epoch saw
                sample = (await asyncio.to_thread(self._head), epoch)
                if self.listening:
                    self._covered = advanced(self._covered, self._sample, sample)
                self._sample = sample
            except sa.exc.SQLAlchemyError as exc:
                log.debug("broadcast poll failed: %s", exc)

    # --- the Service -------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._has_mail = asyncio.Event()
        self._covered = await asyncio.to_thread(self._head)
        self._tasks = [
            asyncio.create_task(coro, name=f"{self.name}-{what}")
            for what, coro in (("listen", self._listen()), ("send", self._send()),
                               ("poll", self._poll()))
        ]  # fmt: skip

    async def stop(self) -> None:
        """Send what is queued (for at most :data:`FLUSH_TIMEOUT` seconds), then stop."""
        if self._outbox and self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flushed.wait(), FLUSH_TIMEOUT)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop = None

    def ready(self) -> tuple[bool, str]:
        """Ready once started: while LISTEN is down the poll fallback keeps replicas in step."""
        return (bool(self._tasks), "" if self._tasks else "not started")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _jitter(seconds: float) -> float:
    return seconds * random.uniform(0.8, 1.2)
