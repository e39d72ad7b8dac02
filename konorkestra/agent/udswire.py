"""The UDS protocol's vocabulary (``docs/reference/protocol.md`` v1), spoken by server and peer.

Example::

    >>> encode({"id": 1, "ok": True, "group": "checkout"})
    '{"id":1,"ok":true,"group":"checkout"}'
    >>> need_int({"after": 3}, "after")
    3
    >>> is_release_of("checkout", "checkout-2-" + "ab" * 8, "checkout-3-" + "cd" * 8, 3, ())
    True

What lives here is what both :mod:`konorkestra.agent.uds` (the server: socket,
fan-out) and :mod:`konorkestra.agent.udsconn` (one peer's requests) speak: the
protocol version, the line limit, the JSON encoding, the request-field checks
and their :class:`ProtocolError` codes, and the shape of what is served
(:class:`ReleaseSnapshot`, :class:`StateSource`). It imports neither of them,
so the arrows run one way: ``uds`` → ``udsconn`` → ``udswire``.

Invariants:

* :func:`encode` is compact, UTF-8 friendly JSON that refuses NaN and
  infinities; read-only mappings encode like dicts.
* Request lines are parsed by :func:`konorkestra.model.strictjson.parse_object`
  (no duplicate keys, NaN, deep nesting or huge numbers), the same parser as the
  Center's request bodies; anything else is a ``bad_request``.
* Every check raises :class:`ProtocolError` with a code of docs/reference/protocol.md;
  nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, Protocol, TypeGuard

from konorkestra.model.releaseid import parse_release_id
from konorkestra.model.strictjson import JsonRefused, parse_object

PROTOCOL_VERSION = 1
MAX_LINE = 64 * 1024
"""Largest request line in bytes, not counting the terminating newline."""


def encode(obj: object) -> str:
    """Compact JSON text of ``obj`` (no trailing newline); read-only mappings are fine."""
    return json.dumps(
        obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_jsonable
    )


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


RequestId = str | int


class ReleaseSnapshot(Protocol):
    """A committed release as the server needs it; the store's ``CommittedRelease`` fits."""

    @property
    def release_id(self) -> str: ...
    @property
    def sequence(self) -> int: ...
    @property
    def digest(self) -> str: ...
    @property
    def config(self) -> Mapping[str, Any]: ...


class StateSource(Protocol):
    """Where the server reads committed state. Calls are made on the event loop."""

    def current(self, group: str) -> ReleaseSnapshot | None:
        """The committed release of ``group``, or ``None`` (none yet, or out of scope)."""
        ...

    def stale(self, group: str) -> bool:
        """Whether ``group``'s release is past its freshness deadline."""
        ...


class ProtocolError(Exception):
    """A request failed with a protocol error ``code`` (see docs/reference/protocol.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_request(line: bytes) -> dict[str, Any]:
    """Strict JSON (no duplicate keys, NaN, deep nesting, huge numbers), an object."""
    try:
        return parse_object(line)
    except JsonRefused as exc:
        raise ProtocolError("bad_request", f"request is {exc.message}") from None


def is_release_of(
    group: str, release: str, current: str, sequence: int, served: Collection[str]
) -> bool:
    """Whether an app may ack ``release`` under ``group``: the group's ``current`` release,
    one handed out lately (``served``), or a release id of ``group`` whose sequence is
    not above the current ``sequence`` (an ack that outlived an agent restart)."""
    if release == current or release in served:
        return True
    parts = parse_release_id(release)
    return parts is not None and parts.group == group and parts.sequence <= sequence


def is_id(value: object) -> TypeGuard[RequestId]:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def request_id(req: dict[str, Any]) -> RequestId:
    rid = req.get("id")
    if not is_id(rid):
        raise ProtocolError("bad_request", "`id` must be a string or an integer")
    return rid


def need_str(req: dict[str, Any], key: str) -> str:
    value = req.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError("bad_request", f"`{key}` must be a non-empty string")
    return value


def need_int(req: dict[str, Any], key: str, default: int | None = None) -> int:
    value = req.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError("bad_request", f"`{key}` must be an integer")
    return value


def json_bool(flag: bool) -> str:
    return "true" if flag else "false"
