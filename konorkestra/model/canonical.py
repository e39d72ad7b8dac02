"""Canonical JSON and content digests.

Example::

    >>> from konorkestra.model.canonical import canonical_bytes, digest_of
    >>> canonical_bytes({"b": 1.0, "a": "x"})
    b'{"a":"x","b":1}'
    >>> digest_of(b"")
    'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

Invariants:

* Every object that is hashed or signed is serialized with
  :func:`canonical_bytes`: UTF-8 JSON, keys sorted by UTF-16 code units, no
  insignificant whitespace, numbers and strings per RFC 8785 (JCS).
* Equal JSON values give equal bytes, whatever their source formatting.
* Values JCS cannot represent (NaN, infinities, integers beyond 2**53,
  non-string keys) raise :class:`CanonicalError`; nothing is silently coerced.
* A digest is always ``sha256:`` followed by 64 lowercase hex digits.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import rfc8785

from konorkestra.model.types import Digest

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class CanonicalError(ValueError):
    """A value cannot be represented canonically (e.g. NaN, a huge integer)."""


def canonical_bytes(value: Any) -> bytes:
    """Serialize ``value`` to RFC 8785 canonical JSON bytes."""
    try:
        out: bytes = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalError(str(exc) or type(exc).__name__) from exc
    return out


def digest_of(data: bytes) -> Digest:
    """Return the ``sha256:<hex>`` digest of raw bytes."""
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def digest_value(value: Any) -> Digest:
    """Digest of the canonical bytes of a JSON-compatible value."""
    return digest_of(canonical_bytes(value))


def is_digest(text: str) -> bool:
    """True when ``text`` is a well-formed ``sha256:<hex>`` digest."""
    return DIGEST_RE.fullmatch(text) is not None
