"""Strict decoding of untrusted JSON, base64 and timestamps.

Example::

    >>> from konorkestra.trust.wire import parse_canonical, b64decode_strict
    >>> parse_canonical(b'{"a":1}', "bundle", limit=100)
    {'a': 1}
    >>> parse_canonical(b'{"a":1,"a":2}', "bundle", limit=100)
    Traceback (most recent call last):
    ...
    konorkestra.trust.errors.MalformedBundle: bundle: duplicate JSON key 'a'
    >>> b64decode_strict("AA==", "sig")
    b'\\x00'

Invariants:

* Untrusted bytes are size-checked *before* they are decoded (:class:`TooLarge`).
* Accepted JSON is exactly canonical (RFC 8785): UTF-8, no duplicate keys, no
  NaN/Infinity, no whitespace, no trailing bytes. So every signed object has one
  byte encoding and any change to its bytes is a change to its meaning or an
  error.
* Base64 is the standard alphabet with padding and must re-encode to the very
  same text (no stray padding bits, no newlines).
* Times are UTC, whole seconds, spelt ``YYYY-MM-DDTHH:MM:SSZ``.
* Every failure is a :class:`~konorkestra.trust.errors.TrustError`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from konorkestra.model.canonical import CanonicalError, canonical_bytes
from konorkestra.trust.errors import MalformedBundle, TooLarge

_B64_RE = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")


def _no_duplicates(what: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise MalformedBundle(f"{what}: duplicate JSON key {key!r}")
            out[key] = value
        return out

    return hook


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_canonical(data: bytes, what: str, *, limit: int) -> Any:
    """Parse ``data`` as canonical JSON of at most ``limit`` bytes."""
    if len(data) > limit:
        raise TooLarge(f"{what} is {len(data)} bytes, over the {limit}-byte cap")
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text, object_pairs_hook=_no_duplicates(what), parse_constant=_no_constant
        )
    except MalformedBundle:
        raise
    except UnicodeDecodeError as exc:
        raise MalformedBundle(f"{what} is not UTF-8 (byte {exc.start})") from exc
    except (ValueError, RecursionError) as exc:
        raise MalformedBundle(f"{what} is not valid JSON: {exc}") from exc
    try:
        canonical = canonical_bytes(value)
    except CanonicalError as exc:
        raise MalformedBundle(f"{what} has a value JSON cannot sign: {exc}") from exc
    if canonical != data:
        raise MalformedBundle(f"{what} is not in canonical JSON form (RFC 8785)")
    return value


def b64encode(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(text: object, what: str) -> bytes:
    """Decode standard padded base64 that re-encodes to exactly ``text``."""
    if not isinstance(text, str) or _B64_RE.fullmatch(text) is None:
        raise MalformedBundle(f"{what} is not standard padded base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:  # pragma: no cover - the regex already rules this out
        raise MalformedBundle(f"{what} is not valid base64: {exc}") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedBundle(f"{what} is not canonical base64 (stray padding bits)")
    return raw


def format_time(when: dt.datetime) -> str:
    """``when`` (timezone-aware) as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    if when.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object, what: str) -> dt.datetime:
    """Parse a strict UTC timestamp."""
    if not isinstance(text, str) or _TIME_RE.fullmatch(text) is None:
        raise MalformedBundle(f"{what} is not a UTC time like 2025-01-31T12:00:00Z")
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise MalformedBundle(f"{what} is not a valid time: {text}") from exc


def obj(
    value: object, what: str, required: AbstractSet[str], optional: AbstractSet[str] = frozenset()
) -> dict[str, Any]:
    """``value`` must be a JSON object with all ``required`` keys and no others."""
    if not isinstance(value, Mapping):
        raise MalformedBundle(f"{what} must be a JSON object")
    keys = set(value)
    missing = required - keys
    if missing:
        raise MalformedBundle(f"{what} lacks {', '.join(sorted(missing))}")
    extra = keys - required - optional
    if extra:
        raise MalformedBundle(f"{what} has unexpected field {', '.join(sorted(extra))}")
    return dict(value)


def text_field(value: object, what: str, pattern: re.Pattern[str] | None = None) -> str:
    """A non-empty string, optionally matching ``pattern``."""
    if not isinstance(value, str) or not value:
        raise MalformedBundle(f"{what} must be a non-empty string")
    if pattern is not None and pattern.fullmatch(value) is None:
        raise MalformedBundle(f"{what} {value[:80]!r} is not well formed")
    return value


def int_field(value: object, what: str, minimum: int = 0) -> int:
    """An integer (not a bool) at least ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise MalformedBundle(f"{what} must be an integer >= {minimum}")
    return value


def list_field(value: object, what: str) -> list[Any]:
    """A JSON array."""
    if not isinstance(value, list):
        raise MalformedBundle(f"{what} must be a JSON array")
    return value


def is_hex64(text: str) -> bool:
    """64 lowercase hex digits (a SHA-256)."""
    return _HEX64_RE.fullmatch(text) is not None
