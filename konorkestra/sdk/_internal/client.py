"""The synchronous client: snapshots, watches, acks.

Invariants:

* ``get_config`` after the first call for a group is one dict lookup: the
  newest release received is published in ``_latest`` by the reader thread.
* Per group, releases are accepted only with a sequence above the last one
  received, so a reconnect (``watch`` with ``after`` = that sequence) neither
  misses the current release nor repeats one.
* Callbacks run on one dispatcher thread, in sequence order, never
  concurrently. Each watcher has its own view (the last config its callback
  accepted); a callback that raises leaves its view unchanged.
* Each release is acked once per process: ``failed`` (with ``TypeName:
  message`` of the first error) if any callback raised, else ``applied``.
  A watcher registered ``since`` an older config than the newest joins the
  newest release's delivery (and ack) if it is still queued; otherwise it is
  called alone right after, and its outcome is only logged (never a second ack).
  Acks that cannot be sent while disconnected are queued (bounded) and sent on
  reconnect.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from konorkestra.sdk._internal.bind import Binding, bind_config
from konorkestra.sdk._internal.config import Config, config_from_message
from konorkestra.sdk._internal.errors import BindError, NotFoundError, UnavailableError, describe
from konorkestra.sdk._internal.paths import read_release, resolve_data_dir, resolve_socket
from konorkestra.sdk._internal.session import Session

log = logging.getLogger("konorkestra.sdk")

Callback = Callable[[Config, Config | None], object]
T = TypeVar("T")


class Watch:
    """A registered callback; ``current`` is the last config it accepted."""

    def __init__(self, client: Client, group: str, fn: Callback, view: Config | None) -> None:
        self.group = group
        self.fn = fn
        self.current = view
        self.offered = view.sequence if view is not None else 0  # dispatcher thread only
        self._client = client

    def cancel(self) -> None:
        """Stop calling this watcher."""
        with self._client._lock:
            self._client._group(self.group).watchers.discard(self)


class _Group:
    __slots__ = ("latest", "name", "not_found", "subscribed", "watchers")

    def __init__(self, name: str) -> None:
        self.name = name
        self.latest: Config | None = None
        self.not_found = False
        self.subscribed = -1  # connection generation of the active watch
        self.watchers: set[Watch] = set()


class Client:
    """A connection to the node's agent; see ``konorkestra.sdk`` for usage."""

    def __init__(
        self,
        socket: str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.socket_path = resolve_socket(socket, Path(data_dir) if data_dir else None)
        self.data_dir = resolve_data_dir(data_dir, self.socket_path)
        self.timeout = timeout
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._groups: dict[str, _Group] = {}
        self._latest: dict[str, Config] = {}
        self._unsent: deque[dict[str, Any]] = deque(maxlen=256)
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._closed = False
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name="konorkestra-sdk-callbacks", daemon=True
        )
        self._dispatcher.start()
        self._session = Session(
            self.socket_path,
            name=name,
            on_connected=self._on_connected,
            on_event=self._on_event,
            on_disconnected=self._on_disconnected,
        )
        self._session.start()
        self._session.first_attempt.wait(timeout)
        if self._session.generation is None:
            log.warning(
                "agent unreachable at %s; serving configs from %s until it is back",
                self.socket_path,
                self.data_dir,
            )

    # -- public API ---------------------------------------------------------------

    def get_config(self, group: str) -> Config:
        """The newest release of ``group`` (after the first call: a dict lookup)."""
        cfg = self._latest.get(group)
        if cfg is not None:
            return cfg
        return self._first_get(group)

    def watch(self, group: str, callback: Callback, *, since: Config | None = None) -> Watch:
        """Call ``callback(new, old)`` for each release of ``group`` newer than now.

        "Now" is the release :meth:`get_config` returns at registration (``old``
        is ``None`` for the first release of a group that had none). With
        ``since`` (a config of ``group`` the application already holds), "now"
        is ``since`` instead: if a newer release arrived in between, the
        callback gets it first, on the callback thread, with ``old=since``.
        """
        if since is not None and since.group != group:
            raise ValueError(f"since is a config of group {since.group!r}, not {group!r}")
        with contextlib.suppress(NotFoundError, UnavailableError):
            self.get_config(group)
        with self._lock:
            g = self._group(group)
            latest = g.latest
            behind = since is not None and (latest is None or latest.sequence != since.sequence)
            w = Watch(self, group, callback, since if behind else latest)
            g.watchers.add(w)
            if since is not None and latest is not None and latest.sequence > since.sequence:
                # Queued after latest's own delivery (FIFO): if that has not run
                # yet, w joins it and its ack, and this job finds nothing to do.
                self._jobs.put(lambda: self._catch_up(g, w, latest))
        return w

    def on_change(
        self, group: str, *, since: Config | None = None
    ) -> Callable[[Callback], Callback]:
        """Decorator form of :meth:`watch`; returns the function unchanged."""

        def register(fn: Callback) -> Callback:
            self.watch(group, fn, since=since)
            return fn

        return register

    def bind(self, group: str, name: str, cls: type[T]) -> Binding[T]:
        """ConfigSet ``name`` of ``group`` as a live ``cls`` dataclass instance.

        Raises :class:`BindError` (and acks the release ``failed``) if the
        current release does not validate; later releases that do not validate
        are acked ``failed`` and leave ``binding.value`` unchanged.
        """
        self.get_config(group)
        with self._lock:
            g = self._group(group)
            cfg = g.latest
            assert cfg is not None
            try:
                binding = Binding(group, name, cls, bind_config(cfg, name, cls), cfg.release)
            except BindError as exc:
                if cfg.source == "agent":
                    self._ack(group, cfg.release, exc)
                raise
            g.watchers.add(Watch(self, group, binding._update, cfg))
        return binding

    def report(self, group: str, metric: str, value: float) -> bool:
        """Send a health signal; ``False`` if the agent is unreachable (it is dropped)."""
        if isinstance(value, bool) or not math.isfinite(value):
            raise ValueError("value must be a finite number")
        gen = self._session.generation
        if gen is None:
            return False
        request = {"op": "report", "group": group, "metric": metric, "value": value}
        try:
            self._session.send(request, gen)
        except UnavailableError:
            return False
        return True

    @property
    def connected(self) -> bool:
        """Whether the agent connection is up right now."""
        return self._session.generation is not None

    def close(self) -> None:
        """Disconnect and stop the background threads. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._changed.notify_all()
        self._session.close()
        self._jobs.put(None)
        if threading.current_thread() is not self._dispatcher:
            self._dispatcher.join(10)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- first read of a group ------------------------------------------------------

    def _first_get(self, group: str) -> Config:
        deadline = time.monotonic() + self.timeout
        with self._lock:
            g = self._group(group)
            while True:
                if self._closed:
                    raise UnavailableError("client is closed")
                if g.latest is not None:
                    return g.latest
                if g.not_found:
                    raise NotFoundError(f"the agent has no release for group {group!r}")
                if self._session.generation is None:
                    return self._from_disk(g)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise UnavailableError(f"no answer from the agent for group {group!r}")
                self._changed.wait(remaining)

    def _from_disk(self, g: _Group) -> Config:
        cfg = read_release(self.data_dir, g.name)
        if cfg is None:
            raise UnavailableError(
                f"agent unreachable at {self.socket_path} and no release of {g.name!r} "
                f"in {self.data_dir}"
            )
        log.warning("serving %s (%s) from disk: agent unreachable", g.name, cfg.release)
        self._accept(g, cfg)
        return cfg

    # -- state changes (reader thread or callers; all under self._lock) -------------

    def _group(self, name: str) -> _Group:
        g = self._groups.get(name)
        if g is None:
            g = self._groups[name] = _Group(name)
            gen = self._session.generation
            if gen is not None:
                self._subscribe(g, gen)
        return g

    def _subscribe(self, g: _Group, gen: int) -> None:
        if g.subscribed == gen:
            return
        g.subscribed = gen
        after = g.latest.sequence if g.latest is not None else 0
        try:
            self._session.send({"op": "get", "group": g.name}, gen, lambda r: self._on_get(g, r))
            self._session.send({"op": "watch", "group": g.name, "after": after}, gen)
        except UnavailableError:
            pass  # the next connection subscribes again

    def _accept(self, g: _Group, cfg: Config) -> bool:
        """Make ``cfg`` the group's newest release if it is newer; queue callbacks."""
        if g.latest is not None and cfg.sequence <= g.latest.sequence:
            return False
        g.latest = cfg
        g.not_found = False
        self._latest[g.name] = cfg
        self._changed.notify_all()
        if cfg.source == "agent":
            self._jobs.put(lambda: self._deliver(g, cfg))
        return True

    def _replace(self, g: _Group, cfg: Config) -> None:
        g.latest = cfg
        self._latest[g.name] = cfg
        self._changed.notify_all()

    def _on_get(self, g: _Group, reply: dict[str, Any]) -> None:
        with self._lock:
            if reply.get("ok") is True:
                cfg = config_from_message(reply)
                same = g.latest is not None and g.latest.sequence == cfg.sequence
                if not self._accept(g, cfg) and same and g.latest is not None:
                    # the release we hold (maybe read from disk) is live: relabel it
                    self._replace(g, g.latest.evolve(source="agent", stale=cfg.stale))
            elif (reply.get("error") or {}).get("code") == "not_found":
                g.not_found = True
                self._changed.notify_all()

    def _on_event(self, msg: dict[str, Any]) -> None:
        with self._lock:
            g = self._groups.get(str(msg.get("group")))
            if g is None:
                return
            if msg["event"] == "release":
                self._accept(g, config_from_message(msg))
            elif msg["event"] == "status" and g.latest is not None:
                self._replace(g, g.latest.evolve(stale=bool(msg.get("stale"))))

    def _on_connected(self, gen: int) -> None:
        with self._lock:
            while self._unsent:
                self._session.send(self._unsent.popleft(), gen)
            for g in self._groups.values():
                self._subscribe(g, gen)

    def _on_disconnected(self) -> None:
        with self._lock:
            self._changed.notify_all()

    # -- callbacks (dispatcher thread) -----------------------------------------------

    def _dispatch_loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:
                log.exception("internal error while delivering a release")

    def _deliver(self, g: _Group, new: Config) -> None:
        with self._lock:
            watchers = [
                w for w in g.watchers if w.current is None or w.current.sequence < new.sequence
            ]
        error: BaseException | None = None
        for w in watchers:
            w.offered = new.sequence
            try:
                w.fn(new, w.current)
            except Exception as exc:
                log.exception("callback for %s failed on %s", g.name, new.release)
                error = error or exc
            else:
                w.current = new
        self._ack(g.name, new.release, error)

    def _catch_up(self, g: _Group, w: Watch, cfg: Config) -> None:
        """Give ``cfg`` to a watcher registered ``since`` an older config.

        ``cfg`` was acked when it was delivered (once per process); a second,
        possibly contradictory ack is never sent, so a raise is only logged.
        """
        with self._lock:
            if w not in g.watchers or w.offered >= cfg.sequence:
                return  # cancelled, or it joined cfg's own delivery
        w.offered = cfg.sequence
        try:
            w.fn(cfg, w.current)
        except Exception:
            log.exception(
                "callback for %s failed on %s (acked before it registered)", g.name, cfg.release
            )
        else:
            w.current = cfg

    def _ack(self, group: str, release: str, error: BaseException | None) -> None:
        ack: dict[str, Any] = {"op": "ack", "group": group, "release": release}
        ack["status"] = "applied" if error is None else "failed"
        if error is not None:
            ack["error"] = describe(error)
        with self._lock:
            gen = self._session.generation
            try:
                if gen is None:
                    raise UnavailableError("disconnected")
                self._session.send(ack, gen)
            except UnavailableError:
                self._unsent.append(ack)
