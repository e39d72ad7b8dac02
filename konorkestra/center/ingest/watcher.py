"""Notice ref changes in a local repository as they happen (watchdog / inotify).

Invariants:

* Only ``refs/`` (recursively), ``packed-refs`` and ``HEAD`` matter; object
  writes during a push are ignored, so one push costs a handful of wake-ups.
* Only events that can change a ref count: opening a file, or closing one
  that was not written, is a read — the ingest pass itself reads ``HEAD`` and
  the refs, and reacting to that would make every pass wake the next one.
* The callback only *asks* for a look (it must be cheap and thread-safe); the
  ingest worker decides what changed. A missed event costs latency, not
  correctness: the worker also polls on a slow timer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_OPENED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

log = logging.getLogger("konorkestra.center.ingest")
_TOP_LEVEL = {"packed-refs", "HEAD"}
_READS = {EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE}


class _Handler(FileSystemEventHandler):
    def __init__(self, git_dir: Path, on_change: Callable[[], None]) -> None:
        self.git_dir, self.on_change = git_dir, on_change

    def _relevant(self, path: str | bytes) -> bool:
        text = path.decode() if isinstance(path, bytes) else path
        try:
            rel = Path(text).relative_to(self.git_dir)
        except ValueError:
            return False
        return rel.parts[:1] == ("refs",) or str(rel) in _TOP_LEVEL

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _READS:
            return
        paths = [event.src_path, getattr(event, "dest_path", "") or ""]
        if any(p and self._relevant(p) for p in paths):
            self.on_change()


class RefWatcher:
    """Watches ``git_dir`` for ref updates and calls ``on_change`` from a watchdog thread."""

    def __init__(self, git_dir: Path, on_change: Callable[[], None]) -> None:
        self.git_dir = git_dir.resolve()
        self._observer = Observer()
        handler = _Handler(self.git_dir, on_change)
        self._observer.schedule(handler, str(self.git_dir), recursive=False)
        refs = self.git_dir / "refs"
        if refs.is_dir():
            self._observer.schedule(handler, str(refs), recursive=True)
        self._observer.daemon = True

    def start(self) -> None:
        self._observer.start()
        log.info("watching %s for ref changes", self.git_dir)

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
