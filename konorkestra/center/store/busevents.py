"""What Center replicas tell each other, as text: the events of :mod:`.broadcast`.

Example::

    payload = encode("a1b2c3d4", Released("checkout", 7))   # "a1b2c3d4 r checkout 7"
    origin, event = decode(payload)                          # ("a1b2c3d4", Released(...))
    from_audit("node.revoked", {"node_id": "00ff..."})       # NodeChanged("00ff...")

Rules (pure: no I/O, no clock; tested by name in ``tests/center/store/test_busevents.py``):

* E1 A payload is ``<origin> <kind> <fields...>`` separated by single spaces;
  ``origin`` names the replica that sent it (so a replica can skip its own).
  Group names, node ids and origins never contain spaces (DNS labels, hex).
* E2 :func:`decode` never raises: a payload that is malformed, of an unknown
  kind or longer than :data:`MAX_PAYLOAD` is ``None`` and is ignored (a newer
  replica may send kinds an older one does not know).
* E3 ``Released(group, 0)`` means "the Group's rollout moved" (the desired
  state per node changed, no new Release); a sequence ``> 0`` is a new Release.
* E4 :func:`from_audit` maps the audit log's records to the same events, for
  the poll fallback: ``release.created`` is a Release; ``node.enrolled``,
  ``node.renewed`` and ``node.revoked`` change a node row; any other record
  naming a ``group`` (rollout and command events) is a rollout move. Agent
  reports (``node.release_*``) change no node row and map to nothing.
* E5 Every event is idempotent for its receiver: delivering one twice costs a
  second wake-up, a second cache drop or a second runner pass, never a wrong
  answer; so equal payloads waiting to be sent may be sent once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MAX_PAYLOAD = 7999
"""PostgreSQL's NOTIFY payload limit is 8000 bytes; ours are far shorter."""

NODE_ROW_ACTIONS = frozenset({"node.enrolled", "node.renewed", "node.revoked"})


@dataclass(frozen=True)
class Released:
    """A Release of ``group`` committed (``sequence > 0``) or its rollout moved (``0``)."""

    group: str
    sequence: int


@dataclass(frozen=True)
class NodeChanged:
    """A node row was written (enrolled, renewed, revoked): drop it from caches."""

    node_id: str


@dataclass(frozen=True)
class Reported:
    """A replica whose runner does not drive stored an agent report about ``group``."""

    group: str


@dataclass(frozen=True)
class IngestAsked:
    """Replica ``origin`` was asked to ingest (webhook, watcher) under ``ticket``."""

    origin: str
    ticket: int


@dataclass(frozen=True)
class IngestDone:
    """The ingest leader finished a pass that began after ``origin``'s ``ticket``."""

    origin: str
    ticket: int


Event = Released | NodeChanged | Reported | IngestAsked | IngestDone


def encode(origin: str, event: Event) -> str:
    """The NOTIFY payload of ``event`` sent by ``origin`` (rule E1)."""
    match event:
        case Released(group, sequence):
            return f"{origin} r {group} {sequence}"
        case NodeChanged(node_id):
            return f"{origin} n {node_id}"
        case Reported(group):
            return f"{origin} p {group}"
        case IngestAsked(asker, ticket):
            return f"{origin} i {asker} {ticket}"
        case IngestDone(asker, ticket):
            return f"{origin} d {asker} {ticket}"


def _count(text: str) -> int | None:
    """A decimal count as :func:`encode` writes it (ASCII digits, no leading zero)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or text[:1] == "0" != text:
        return None
    return int(text)


def decode(payload: str) -> tuple[str, Event] | None:
    """``(origin, event)``, or ``None`` for anything not understood (rule E2)."""
    if len(payload) > MAX_PAYLOAD:
        return None
    parts = payload.split(" ")
    if len(parts) < 3 or not all(parts):
        return None
    origin, kind, fields = parts[0], parts[1], parts[2:]
    event: Event | None = None
    if kind == "n" and len(fields) == 1:
        event = NodeChanged(fields[0])
    elif kind == "p" and len(fields) == 1:
        event = Reported(fields[0])
    elif kind in ("r", "i", "d") and len(fields) == 2:
        number = _count(fields[1])
        if number is None:
            return None
        if kind == "r":
            event = Released(fields[0], number)
        elif kind == "i":
            event = IngestAsked(fields[0], number)
        else:
            event = IngestDone(fields[0], number)
    return None if event is None else (origin, event)


def from_audit(action: str, details: Mapping[str, object]) -> Event | None:
    """The event an audit record stands for, if any (rule E4)."""
    if action in NODE_ROW_ACTIONS:
        node = details.get("node_id")
        return NodeChanged(node) if isinstance(node, str) else None
    if action.startswith("node."):
        return None
    group = details.get("group")
    if not isinstance(group, str):
        return None
    sequence = details.get("sequence") if action == "release.created" else 0
    return Released(group, sequence if isinstance(sequence, int) else 0)
