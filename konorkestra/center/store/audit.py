"""The audit log: an append-only, hash-chained table of everything that happened.

Example::

    >>> from konorkestra.center.store import open_store
    >>> from konorkestra.center.store.audit import append, verify_chain
    >>> engine = open_store("sqlite:///:memory:")
    >>> with engine.begin() as conn:
    ...     append(conn, "alice", "release.created", {"group": "checkout", "sequence": 1})
    ...     append(conn, "center", "commit.accepted", {"sha": "ab12"})
    >>> result = verify_chain(engine)
    >>> (result.ok, result.count, result.first_bad)
    (True, 2, None)

Invariants:

* Each row's ``hash`` is ``sha256`` over the canonical JSON (RFC 8785) of
  ``{seq, at, actor, action, details, prev_hash}``; ``prev_hash`` is the previous
  row's ``hash`` (:data:`GENESIS` for the first row). Editing any field of any
  row, deleting or reordering rows breaks the chain at the first affected row.
* ``at`` is stored as RFC 3339 text exactly as it was hashed, so the hash never
  depends on how a driver rounds or zones a datetime.
* :func:`append` (:func:`append_many` for a batch) runs in the caller's
  transaction: the event commits with the change it describes, or neither does.
  The store begins write transactions ``IMMEDIATE`` (SQLite queues writers) and
  ``prev_hash`` is unique, so two appends can never both chain onto the same row.
* Truncating the tail cannot be seen from inside the chain; compare the head
  hash :func:`verify_chain` returns with one kept elsewhere (an export).
* Rows become types here: :func:`list_audit` returns :class:`AuditEvent`; an
  event's ``details`` are free-form JSON (:data:`Details`) and stay so, exactly
  as they were hashed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from konorkestra.center.store import schema
from konorkestra.center.store.engine import iso, now, reader
from konorkestra.model.types import JsonObject
from konorkestra.trust.auditchain import event_hash
from konorkestra.trust.checkpoint import GENESIS

Details = Mapping[str, object]
"""What an event says beyond who did what: free-form JSON, hashed as given."""
Event = tuple[str, str, Details]
"""``(actor, action, details)``: one event to append."""


def row_hash(seq: int, at: str, actor: str, action: str, details: Details, prev_hash: str) -> str:
    """The hash of one audit row, over its canonical JSON: the same rule an offline
    verifier applies to an export (:func:`konorkestra.trust.auditchain.event_hash`)."""
    row = {"seq": seq, "at": at, "actor": actor, "action": action, "details": dict(details),
           "prev_hash": prev_hash}  # fmt: skip
    return event_hash(row)


def append(conn: Connection, actor: str, action: str, details: Details) -> int:
    """Append one event in ``conn``'s transaction; returns its ``seq``."""
    return append_many(conn, [(actor, action, details)])


def append_many(conn: Connection, events: Sequence[Event]) -> int:
    """Append ``(actor, action, details)`` events in order, in ``conn``'s transaction.

    One read of the chain head and one insert for all of them; returns the last ``seq``
    (0 when ``events`` is empty and the log is empty).
    """
    t = schema.audit
    head = conn.execute(sa.select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1)).first()
    seq = 0 if head is None else int(head.seq)
    prev = GENESIS if head is None else str(head.hash)
    if not events:
        return seq
    at = iso(now()) or ""
    rows = []
    for actor, action, details in events:
        seq += 1
        body = dict(details)
        digest = row_hash(seq, at, actor, action, body, prev)
        rows.append({"seq": seq, "at": at, "actor": actor, "action": action, "details": body,
                     "prev_hash": prev, "hash": digest})  # fmt: skip
        prev = digest
    conn.execute(sa.insert(t), rows)
    return seq


@dataclass(frozen=True)
class ChainResult:
    """Outcome of :func:`verify_chain`; ``first_bad`` is the ``seq`` of the first bad row."""

    ok: bool
    count: int
    head: str
    first_bad: int | None = None
    reason: str | None = None
    head_seq: int = 0
    """The ``seq`` of the last row verified (``head`` is its hash); not in the API's JSON."""

    def to_dict(self) -> JsonObject:
        """The JSON of ``GET /v1/audit/verify``."""
        return {
            "ok": self.ok,
            "count": self.count,
            "head": self.head,
            "first_bad": self.first_bad,
            "reason": self.reason,
        }


def verify_chain(
    engine: Engine, *, batch: int = 1000, resume: ChainResult | None = None
) -> ChainResult:
    """Recompute the chain from the first row; stop at the first row that breaks it.

    ``resume`` (an ``ok`` result of an earlier call) verifies only the rows appended
    since, chained onto its head: what a dashboard re-checks as the log grows. Rows up
    to ``resume.head_seq`` are trusted as then verified, so only a call without it
    notices a later edit of an old row."""
    t = schema.audit
    prev, count, last_seq = GENESIS, 0, 0
    if resume is not None and resume.ok:
        prev, count, last_seq = resume.head, resume.count, resume.head_seq
    with reader(engine).connect() as conn:
        while True:
            rows = conn.execute(
                sa.select(t).where(t.c.seq > last_seq).order_by(t.c.seq).limit(batch)
            ).all()
            if not rows:
                return ChainResult(True, count, prev, head_seq=last_seq)
            for row in rows:
                m = row._mapping
                seq = int(m["seq"])
                if m["prev_hash"] != prev:
                    why = "prev_hash does not match the previous row (a row was removed or edited)"
                    return ChainResult(False, count, prev, seq, why, last_seq)
                expect = row_hash(
                    seq, m["at"], m["actor"], m["action"], m["details"], m["prev_hash"]
                )
                if m["hash"] != expect:
                    why = "row content does not match its hash"
                    return ChainResult(False, count, prev, seq, why, last_seq)
                prev, count, last_seq = expect, count + 1, seq


@dataclass(frozen=True)
class AuditEvent:
    """One row of the audit log, as it was stored and hashed."""

    seq: int
    at: str
    """RFC 3339 text, exactly as hashed."""
    actor: str
    action: str
    details: Details
    prev_hash: str
    hash: str

    def to_json(self) -> JsonObject:
        """The event as ``GET /v1/audit`` lists it."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def audit_event(m: RowMapping) -> AuditEvent:
    """An ``audit`` row as an :class:`AuditEvent`."""
    return AuditEvent(
        seq=int(m["seq"]),
        at=str(m["at"]),
        actor=str(m["actor"]),
        action=str(m["action"]),
        details=m["details"],
        prev_hash=str(m["prev_hash"]),
        hash=str(m["hash"]),
    )


def list_audit(
    engine: Engine,
    *,
    after: int,
    limit: int,
    before: int | None = None,
    newest_first: bool = False,
) -> list[AuditEvent]:
    """At most ``limit`` events with ``after < seq`` (and ``seq < before``, if given).

    Oldest first; with ``newest_first`` the newest ``limit`` of that range, newest
    first, so ``before`` = the last ``seq`` of one page gives the page before it."""
    t = schema.audit
    q = sa.select(t).where(t.c.seq > after)
    if before is not None:
        q = q.where(t.c.seq < before)
    q = q.order_by(t.c.seq.desc() if newest_first else t.c.seq).limit(limit)
    with reader(engine).connect() as conn:
        return [audit_event(r._mapping) for r in conn.execute(q)]
