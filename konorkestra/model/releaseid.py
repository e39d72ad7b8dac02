"""Release ids: ``<group>-<sequence>-<16 hex of the statement digest>``.

Example::

    >>> from konorkestra.model.releaseid import parse_release_id, release_id
    >>> rid = release_id("checkout", 4, "sha256:" + "ab" * 32)
    >>> rid
    'checkout-4-abababababababab'
    >>> parse_release_id(rid)
    ReleaseIdParts(group='checkout', sequence=4, digest_prefix='abababababababab')
    >>> parse_release_id("checkout-4") is None
    True

Invariants:

* A release id names its Group and its sequence; the 16 hex are the start of
  the signed statement's digest, so two Releases of one Group and sequence
  (which the Center never makes) would still differ.
* :func:`parse_release_id` is the one reader of that format (trust, Center
  and agent use it); it returns ``None`` for anything else, never raises.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from konorkestra.model.types import ReleaseId

_RELEASE_ID = re.compile(r"(?P<group>[a-z0-9-]+)-(?P<seq>[1-9][0-9]{0,15})-(?P<hex>[0-9a-f]{16})")


class ReleaseIdParts(NamedTuple):
    group: str
    sequence: int
    digest_prefix: str


def release_id(group: str, sequence: int, statement_digest: str) -> ReleaseId:
    """The id of Release ``sequence`` of ``group`` whose statement has ``statement_digest``."""
    return ReleaseId(f"{group}-{sequence}-{statement_digest[7:23]}")


def parse_release_id(text: str) -> ReleaseIdParts | None:
    """``(group, sequence, 16 hex)`` of a release id; ``None`` if ``text`` is not one."""
    m = _RELEASE_ID.fullmatch(text)
    if m is None:
        return None
    return ReleaseIdParts(m["group"], int(m["seq"]), m["hex"])
