"""Who saw what: which process received which release, what it acked, what it reported.

Example::

    >>> from konorkestra.agent.peers import PeerIdentity
    >>> vis = Visibility(max_events=100, clock=lambda: 1000.0)
    >>> app = PeerIdentity(pid=42, uid=1000, gid=1000, exe="/usr/bin/python3", start_time=7)
    >>> vis.delivered(app, "checkout", "checkout-3", 3, via="watch", client="web")
    >>> vis.acked(app, "checkout", "checkout-3", "failed", "ValueError: bad", client="web")
    >>> [v.ack_status for v in vis.snapshot()]
    ['failed']
    >>> batch = vis.drain()
    >>> [e.kind for e in batch.events], batch.dropped
    (['delivery', 'ack'], 0)
    >>> vis.drain().events
    []

Two structures, both bounded, both guarded by one lock (safe to call from the
event loop and from a reporting thread):

* an **event log** (:class:`Delivery`, :class:`Ack`, :class:`Report`) that the
  reporting loop :meth:`Visibility.drain`\\ s in batches and sends to the Center.
  When full, the *oldest* events are discarded and counted in
  :attr:`Batch.dropped`, so the Center learns that it missed some.
* a **view table**: per ``(process, group)`` the last release received and the
  last ack, for ``status`` commands and the dashboard. A delivery is logged
  only when it changes the process's release (not for every repeated ``get``). When full, the least
  recently updated entry is evicted.

A process is ``PeerIdentity.key`` = ``(pid, start_time)``, so a reused pid is a
new process. Nothing here does I/O.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from konorkestra.agent.peers import PeerIdentity

AckStatus = Literal["applied", "failed"]
Via = Literal["get", "watch"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """Process ``peer`` was sent release ``release`` of ``group`` at ``at`` (epoch s)."""

    at: float
    peer: PeerIdentity
    client: str | None
    group: str
    release: str
    sequence: int
    via: Via
    kind: Literal["delivery"] = "delivery"


@dataclass(frozen=True, slots=True)
class Ack:
    """Process ``peer`` reported applying ``release`` (``error`` set when failed)."""

    at: float
    peer: PeerIdentity
    client: str | None
    group: str
    release: str
    status: AckStatus
    error: str | None
    kind: Literal["ack"] = "ack"


@dataclass(frozen=True, slots=True)
class Report:
    """An application health signal (``metric`` = ``value``) for a group."""

    at: float
    peer: PeerIdentity
    client: str | None
    group: str
    metric: str
    value: float
    kind: Literal["report"] = "report"


Event = Delivery | Ack | Report


@dataclass(frozen=True, slots=True)
class ProcessView:
    """The latest known state of one process for one group."""

    peer: PeerIdentity
    client: str | None
    group: str
    release: str | None = None
    sequence: int | None = None
    received_at: float | None = None
    ack_release: str | None = None
    ack_status: AckStatus | None = None
    ack_error: str | None = None
    acked_at: float | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """What :meth:`Visibility.drain` hands the reporting loop."""

    events: list[Event] = field(default_factory=list)
    dropped: int = 0
    """Events discarded (oldest first) because the log was full since the last drain."""


def event_to_json(event: Event) -> dict[str, object]:
    """Plain JSON form of one event, for the report to the Center."""
    body: dict[str, object] = {
        "kind": event.kind,
        "at": event.at,
        "process": event.peer.to_json(),
        "client": event.client,
        "group": event.group,
    }
    if isinstance(event, Delivery):
        body.update(release=event.release, sequence=event.sequence, via=event.via)
    elif isinstance(event, Ack):
        body.update(release=event.release, status=event.status, error=event.error)
    else:
        body.update(metric=event.metric, value=event.value)
    return body


class Visibility:
    """Bounded, thread-safe record of deliveries, acks and reports."""

    def __init__(
        self,
        *,
        max_events: int = 10_000,
        max_views: int = 4_096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_events < 1 or max_views < 1:
            raise ValueError("max_events and max_views must be positive")
        self._clock = clock
        self._lock = threading.Lock()
        self._events: deque[Event] = deque()
        self._max_events = max_events
        self._dropped = 0
        self._views: OrderedDict[tuple[tuple[int, int | None], str], ProcessView] = OrderedDict()
        self._max_views = max_views

    def delivered(
        self,
        peer: PeerIdentity,
        group: str,
        release: str,
        sequence: int,
        *,
        via: Via,
        client: str | None = None,
    ) -> None:
        """Record that ``peer`` was sent ``release`` (a get response or a watch event).

        Only the first delivery of a release to a process is an event; repeated
        ``get`` s of the release it already has change nothing (and cost a lookup).
        """
        with self._lock:
            view = self._views.get((peer.key, group))
            if view is not None and view.release == release:
                return
            now = self._clock()
            self._append(Delivery(now, peer, client, group, release, sequence, via))
            view = self._view(peer, client, group)
            self._put(replace(view, release=release, sequence=sequence, received_at=now))

    def acked(
        self,
        peer: PeerIdentity,
        group: str,
        release: str,
        status: AckStatus,
        error: str | None = None,
        *,
        client: str | None = None,
    ) -> None:
        """Record ``peer``'s ack of ``release``."""
        now = self._clock()
        with self._lock:
            self._append(Ack(now, peer, client, group, release, status, error))
            view = self._view(peer, client, group)
            self._put(
                replace(view, ack_release=release, ack_status=status, ack_error=error, acked_at=now)
            )

    def reported(
        self,
        peer: PeerIdentity,
        group: str,
        metric: str,
        value: float,
        *,
        client: str | None = None,
    ) -> None:
        """Record an application health signal."""
        now = self._clock()
        with self._lock:
            self._append(Report(now, peer, client, group, metric, value))

    def drain(self, max_items: int | None = None) -> Batch:
        """Remove and return up to ``max_items`` of the oldest events (all when ``None``).

        The dropped count is returned with the first batch after the drops and
        then reset.
        """
        with self._lock:
            n = len(self._events) if max_items is None else min(max_items, len(self._events))
            events = [self._events.popleft() for _ in range(n)]
            dropped, self._dropped = self._dropped, 0
        return Batch(events=events, dropped=dropped)

    def snapshot(self) -> list[ProcessView]:
        """The current view table, least recently updated first."""
        with self._lock:
            return list(self._views.values())

    def pending(self) -> int:
        """Number of events waiting to be drained."""
        with self._lock:
            return len(self._events)

    # -- internals; callers hold self._lock ------------------------------------

    def _append(self, event: Event) -> None:
        if len(self._events) >= self._max_events:
            self._events.popleft()
            self._dropped += 1
        self._events.append(event)

    def _view(self, peer: PeerIdentity, client: str | None, group: str) -> ProcessView:
        view = self._views.get((peer.key, group))
        if view is None:
            return ProcessView(peer=peer, client=client, group=group)
        return view if client is None or view.client == client else replace(view, client=client)

    def _put(self, view: ProcessView) -> None:
        key = (view.peer.key, view.group)
        self._views[key] = view
        self._views.move_to_end(key)
        while len(self._views) > self._max_views:
            self._views.popitem(last=False)
