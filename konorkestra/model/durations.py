"""Rollout durations such as ``90s``, ``5m`` or ``1h30m``.

Example::

    >>> from konorkestra.model.durations import parse_duration, format_duration
    >>> parse_duration("1h30m")
    5400
    >>> format_duration(parse_duration("1m30s"))
    '90s'

Invariants:

* A duration is one or more ``<digits><unit>`` parts, units ``h``, ``m``, ``s``
  in that order, each at most once; the value is whole seconds.
* :func:`format_duration` is the one canonical spelling (``<seconds>s``), so two
  spellings of the same duration give the same canonical Policy and digest.
"""

from __future__ import annotations

import re

_DURATION_RE = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
MAX_DURATION_SECONDS = 7 * 24 * 3600
"""Longer bakes are almost certainly typos (a week is plenty)."""


class DurationError(ValueError):
    """A duration string does not parse or is out of range."""


def parse_duration(text: str) -> int:
    """Parse ``text`` into whole seconds, raising :class:`DurationError`."""
    match = _DURATION_RE.fullmatch(text)
    if not text or match is None:
        raise DurationError(
            f"{text!r} is not a duration; write e.g. '90s', '5m' or '1h30m' (units h, m, s)"
        )
    seconds = int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + int(match["s"] or 0)
    if seconds > MAX_DURATION_SECONDS:
        raise DurationError(f"{text!r} is longer than the maximum of 7 days")
    return seconds


def format_duration(seconds: int) -> str:
    """The canonical spelling of a duration: ``<seconds>s``."""
    if seconds < 0:
        raise DurationError("a duration cannot be negative")
    return f"{seconds}s"
