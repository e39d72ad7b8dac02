"""Offline judge of an audit export: every hash, the chain, the range, the checkpoint.

Example::

    >>> from konorkestra.trust.auditchain import ChainChecker, ExportRange, event_hash, GENESIS
    >>> ev = {"seq": 1, "at": "2025-01-01T00:00:00Z", "actor": "alice",
    ...       "action": "token.created", "details": {}, "prev_hash": GENESIS}
    >>> ev["hash"] = event_hash(ev)
    >>> check = ChainChecker(ExportRange(since=None, until=None, first_seq=1,
    ...                                  first_prev_hash=GENESIS))
    >>> check.add(ev, line=2)
    >>> (check.count, check.last_seq)
    (1, 1)

The caller (``konorctl audit verify``) reads the file line by line and feeds each
event; memory stays bounded by one event. Rules, each refusal an
:class:`AuditChainError` naming the event (``seq``, file line) and what is wrong:

* **A1 shape**: an event is a JSON object with exactly ``seq`` (integer >= 1),
  ``at``, ``actor``, ``action`` (strings), ``details`` (object), ``prev_hash``
  and ``hash`` (``sha256:<hex>``).
* **A2 hash**: ``hash`` is ``sha256`` of the canonical JSON (RFC 8785) of
  ``{seq, at, actor, action, details, prev_hash}``: :func:`event_hash`, the one
  rule, which the Center's store also uses when it appends
  (``konorkestra.center.store.audit.row_hash``).
* **A3 contiguous**: seqs rise by exactly one; the first is the range's
  ``first_seq``, which is ``since + 1`` for a seq ``since`` and 1 with no ``since``.
* **A4 chained**: each ``prev_hash`` is the previous event's ``hash``; the first
  is the range's ``first_prev_hash`` (:data:`GENESIS` for seq 1).
* **A5 in range**: with a time ``since``/``until`` every event's ``at`` lies inside.
* **A6 checkpoint**: a checkpoint must end the export; its ``seq``/``hash`` are
  the last event's. An export without ``until`` reaches the head the checkpoint
  states; one with a seq ``until`` reaches ``min(until, head)``. So a dropped
  tail, a dropped checkpoint or a checkpoint from elsewhere is refused.

Signatures are :func:`konorkestra.trust.checkpoint.verify_checkpoint`'s job; this
module judges the events against a checkpoint already verified.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from konorkestra.model.canonical import DIGEST_RE, CanonicalError, digest_value
from konorkestra.trust.checkpoint import GENESIS, AuditCheckpoint
from konorkestra.trust.errors import TrustError

__all__ = ["GENESIS", "AuditChainError", "ChainChecker", "ExportRange", "event_hash"]

EVENT_FIELDS = ("seq", "at", "actor", "action", "details", "prev_hash", "hash")
_SEQ_RE = re.compile(r"^[0-9]{1,18}$")


class AuditChainError(TrustError):
    """An export that does not prove what it claims; ``seq``/``line`` name the event."""

    code = "audit_chain"

    def __init__(self, reason: str, *, seq: int | None, line: int | None) -> None:
        where = "" if seq is None else f"event {seq}"
        if line is not None:
            where = f"{where} (line {line})" if where else f"line {line}"
        super().__init__(f"{where}: {reason}" if where else reason)
        self.seq = seq
        self.line = line


def event_hash(event: Mapping[str, Any]) -> str:
    """The chain hash of one event (rule A2)."""
    return digest_value({k: event[k] for k in EVENT_FIELDS[:-1]})


def parse_bound(text: str | None) -> int | dt.datetime | None:
    """A ``--since``/``--until`` value: a seq (digits) or an RFC 3339 time (aware)."""
    if text is None:
        return None
    if _SEQ_RE.fullmatch(text):
        return int(text)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a seq nor an RFC 3339 time") from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (add Z or +00:00)")
    return when


@dataclass(frozen=True)
class ExportRange:
    """What an export asked for and where it starts (its header, unsigned)."""

    since: str | None
    until: str | None
    first_seq: int | None
    first_prev_hash: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "first_seq": self.first_seq,
            "first_prev_hash": self.first_prev_hash,
        }

    @classmethod
    def from_json(cls, value: object) -> ExportRange:
        """Strictly read a header; a bad one is an :class:`AuditChainError`."""
        keys = {"since", "until", "first_seq", "first_prev_hash"}
        if not isinstance(value, dict) or set(value) != keys:
            raise AuditChainError(f"export header must hold exactly {sorted(keys)}", seq=None,
                                  line=1)  # fmt: skip
        since, until = value["since"], value["until"]
        first, prev = value["first_seq"], value["first_prev_hash"]
        for name, bound in (("since", since), ("until", until)):
            try:
                if bound is not None and not isinstance(bound, str):
                    raise ValueError(f"{bound!r} is not a string")
                parse_bound(bound)
            except ValueError as exc:
                raise AuditChainError(f"export header {name}: {exc}", seq=None, line=1) from None
        if (first is None) != (prev is None) or (
            first is not None
            and (
                not isinstance(first, int)
                or isinstance(first, bool)
                or first < 1
                or not isinstance(prev, str)
                or DIGEST_RE.fullmatch(prev) is None
            )
        ):
            raise AuditChainError("export header first_seq/first_prev_hash are malformed",
                                  seq=None, line=1)  # fmt: skip
        return cls(since, until, first, prev)


class ChainChecker:
    """Rules A1-A6 over a stream of events (see the module docstring)."""

    def __init__(self, rng: ExportRange) -> None:
        self.range = rng
        self.since = parse_bound(rng.since)
        self.until = parse_bound(rng.until)
        self.count = 0
        self.last_seq: int | None = None
        self.last_hash: str | None = None
        self.last_line: int | None = None

    def add(self, raw: object, *, line: int) -> None:
        """Judge the next event (``raw``: the decoded JSON value of its line)."""
        ev = _event(raw, line, self.expected)
        seq = ev["seq"]
        if event_hash(ev) != ev["hash"]:  # A2
            raise AuditChainError("content does not match its hash (edited)", seq=seq, line=line)
        expect_prev: str | None
        if self.last_seq is None:
            expect_seq, expect_prev = self._first()
        else:
            expect_seq, expect_prev = self.last_seq + 1, self.last_hash
        if seq != expect_seq:  # A3
            raise AuditChainError(
                f"expected event {expect_seq} here (events missing or out of order)",
                seq=seq,
                line=line,
            )
        if ev["prev_hash"] != expect_prev:  # A4
            raise AuditChainError(
                "prev_hash is not the previous event's hash (chain broken)", seq=seq, line=line
            )
        self._in_range(ev, line)  # A5
        self.count += 1
        self.last_seq, self.last_hash, self.last_line = seq, ev["hash"], line

    @property
    def expected(self) -> int | None:
        """The seq the next event must have (names an event too broken to say its own)."""
        return self.range.first_seq if self.last_seq is None else self.last_seq + 1

    def refuse(self, reason: str, *, line: int) -> AuditChainError:
        """An error for a line that is not even an event, named by the seq expected there."""
        return AuditChainError(reason, seq=self.expected, line=line)

    def _first(self) -> tuple[int, str]:
        first, prev = self.range.first_seq, self.range.first_prev_hash
        if first is None or prev is None:
            raise AuditChainError("the header says the export is empty but it holds events",
                                  seq=None, line=1)  # fmt: skip
        want = (
            (self.since + 1) if isinstance(self.since, int) else 1 if self.since is None else None
        )
        if want is not None and first != want:
            raise AuditChainError(f"the range starts at event {want}, the header at {first}",
                                  seq=first, line=1)  # fmt: skip
        if first == 1 and prev != GENESIS:
            raise AuditChainError("event 1 must follow the genesis hash", seq=1, line=1)
        return first, prev

    def _in_range(self, ev: Mapping[str, Any], line: int) -> None:
        if not isinstance(self.since, dt.datetime) and not isinstance(self.until, dt.datetime):
            return
        try:
            at = dt.datetime.fromisoformat(ev["at"])
        except ValueError:
            raise AuditChainError(
                "'at' is not an RFC 3339 time", seq=ev["seq"], line=line
            ) from None
        if isinstance(self.since, dt.datetime) and at < self.since:
            raise AuditChainError("'at' is before --since", seq=ev["seq"], line=line)
        if isinstance(self.until, dt.datetime) and at > self.until:
            raise AuditChainError("'at' is after --until", seq=ev["seq"], line=line)

    def finish(self, checkpoint: AuditCheckpoint | None) -> None:
        """Rule A6, once every event was added; ``checkpoint`` already verified."""
        seq, line = self.last_seq, self.last_line
        if checkpoint is None:
            raise AuditChainError("no checkpoint follows it (the export is cut short)",
                                  seq=seq, line=line)  # fmt: skip
        if seq is None:
            return
        if (checkpoint.seq, checkpoint.hash) != (seq, self.last_hash):
            raise AuditChainError(
                f"the checkpoint vouches for event {checkpoint.seq} with another hash; "
                "the export's end does not match it",
                seq=seq,
                line=line,
            )
        if self.until is None:
            reach = checkpoint.head_seq
        elif isinstance(self.until, int):
            reach = min(self.until, checkpoint.head_seq)
        else:
            return
        if seq != reach:
            raise AuditChainError(f"the range ends at event {reach} but the export stops here",
                                  seq=seq, line=line)  # fmt: skip


def _event(raw: object, line: int, expected: int | None) -> dict[str, Any]:
    """Rule A1: the shape of one event (named by its seq, else the seq expected there)."""
    seq = raw.get("seq") if isinstance(raw, dict) else None
    name = seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1 else None
    if not isinstance(raw, dict) or set(raw) != set(EVENT_FIELDS):
        raise AuditChainError(f"an event must hold exactly {', '.join(EVENT_FIELDS)}",
                              seq=name or expected, line=line)  # fmt: skip
    if name is None:
        raise AuditChainError("'seq' must be an integer >= 1", seq=expected, line=line)
    for key in ("at", "actor", "action"):
        if not isinstance(raw[key], str):
            raise AuditChainError(f"{key!r} must be a string", seq=name, line=line)
    if not isinstance(raw["details"], dict):
        raise AuditChainError("'details' must be an object", seq=name, line=line)
    for key in ("prev_hash", "hash"):
        if not isinstance(raw[key], str) or DIGEST_RE.fullmatch(raw[key]) is None:
            raise AuditChainError(f"{key!r} must be sha256:<hex>", seq=name, line=line)
    try:
        event_hash(raw)
    except CanonicalError as exc:
        raise AuditChainError(f"not canonical JSON: {exc}", seq=name, line=line) from None
    return raw
