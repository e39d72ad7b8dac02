"""The audit chain's verification status for the dashboard, and the export it downloads.

Example::

    view = chain_status(engine, now(), budget=INLINE_ROWS)  # None: too much to verify inline
    view = chain_status(engine, now())                      # verifies what it must
    view = chain_status(engine, now(), full=True)           # from the first row again
    for text in export_lines(engine, checkpoint, head_seq): ...   # konorctl audit export's bytes

Invariants:

* The status is :func:`~konorkestra.center.store.audit.verify_chain`'s, kept per
  engine by the head ``seq`` it reached: while the log does not grow it is
  served as is; when it grows, only the new rows are verified, chained onto the
  kept head (``resume``). The first check after the Center starts, and every
  ``full`` one (the page's "verify again" button), recomputes the whole chain,
  so an edit of an old row shows there; the page says when the whole chain was
  last verified. A broken chain stays broken until a ``full`` check says otherwise.
* With a ``budget``, a check that would read more rows than that returns
  ``None``: the page then loads the status with a second request
  (``GET /ui/audit/chain``), so the page itself stays fast with 100,000 events.
* One verification at a time per store: a request without a budget waits for
  the running one (then usually finds its result kept); one with a budget does
  not wait and shows what is kept, if it is still current. So live re-renders
  of a page never pile up verifications of a long log.
* The export is :class:`~konorkestra.trust.auditexport.ExportWriter`'s layout,
  the one ``konorctl audit export`` writes: every event up to the checkpoint's
  head, then the checkpoint; read :data:`EXPORT_PAGE` rows at a time, so memory
  is one page whatever the log's size.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.store import schema
from konorkestra.center.store.audit import ChainResult, list_audit, verify_chain
from konorkestra.center.store.engine import reader
from konorkestra.trust.auditexport import ExportWriter

INLINE_ROWS = 1500
"""Rows the page verifies itself (about 60 ms); more are left to ``/ui/audit/chain``."""
EXPORT_PAGE = 1000


@dataclass(frozen=True)
class ChainView:
    """A verification result, when it was reached, and when the whole chain was last read."""

    result: ChainResult
    checked_at: dt.datetime
    full_at: dt.datetime


_kept: weakref.WeakKeyDictionary[Engine, ChainView] = weakref.WeakKeyDictionary()
_running: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _head_seq(engine: Engine) -> int:
    with reader(engine).connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(schema.audit.c.seq))).scalar() or 0)


def chain_status(
    engine: Engine, now: dt.datetime, *, full: bool = False, budget: int | None = None
) -> ChainView | None:
    """The chain's status now (see the module invariants); ``None`` if over ``budget``
    or, with a ``budget``, while another request is verifying."""
    with _lock:
        running = _running.setdefault(engine, threading.Lock())
    if not running.acquire(blocking=budget is None):
        return _fresh(engine, _head_seq(engine))  # one verification at a time per store
    try:
        return _check(engine, now, full, budget)
    finally:
        running.release()


def _fresh(engine: Engine, head: int) -> ChainView | None:
    with _lock:
        kept = _kept.get(engine)
    if kept is not None and (not kept.result.ok or kept.result.head_seq == head):
        return kept
    return None


def _check(engine: Engine, now: dt.datetime, full: bool, budget: int | None) -> ChainView | None:
    with _lock:
        kept = _kept.get(engine)
    if kept is not None and not full and not kept.result.ok:
        return kept  # broken stays broken until a full check
    head = _head_seq(engine)
    if kept is not None and not full and kept.result.head_seq == head:
        return kept
    resume = None if full or kept is None else kept.result
    todo = head - (0 if resume is None else resume.head_seq)
    if budget is not None and todo > budget:
        return None
    result = verify_chain(engine, resume=resume)
    view = ChainView(result, now, now if resume is None or kept is None else kept.full_at)
    with _lock:
        _kept[engine] = view
    return view


def export_lines(engine: Engine, checkpoint: Mapping[str, Any], head_seq: int) -> Iterator[str]:
    """A whole-log JSONL export up to ``head_seq``, ending with ``checkpoint`` (its head's)."""
    buffer = io.StringIO()
    writer = ExportWriter(buffer, "jsonl", None, None)
    after = 0
    while after < head_seq:
        events = list_audit(engine, after=after, limit=min(EXPORT_PAGE, head_seq - after))
        if not events:  # the log lost rows it had: stop short, the verifier refuses it
            raise RuntimeError(f"the audit log ends at event {after}, before {head_seq}")
        for event in events:
            writer.event(event.to_json())
        after = events[-1].seq
        yield _drain(buffer)
    writer.finish(checkpoint)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
