"""Times as people read them on the dashboard: relative and absolute, pure.

Example::

    >>> import datetime as dt
    >>> t = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)
    >>> relative(t, t + dt.timedelta(seconds=90)), absolute(t)
    ('1 min ago', '2026-12-02 10:00:00 UTC')
    >>> relative(t + dt.timedelta(hours=3), t)
    'in 3 h'

Invariants:

* :func:`relative` rounds down to the largest whole unit (s, min, h, d) and
  says "just now" within a second; a future time is "in …". ``None`` is "never".
* :func:`absolute` is always UTC, to the second, so two operators in two time
  zones read the same text; an ISO string (``…Z``) is accepted too.
"""

from __future__ import annotations

import datetime as dt

_UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def _parse(value: dt.datetime | str | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def relative(value: dt.datetime | str | None, at: dt.datetime) -> str:
    """``value`` from ``at``'s point of view: "3 min ago", "in 40 s", "just now"."""
    when = _parse(value)
    if when is None:
        return "never"
    seconds = (at - when).total_seconds()
    span = abs(seconds)
    if span < 1:
        return "just now"
    for size, unit in _UNITS:
        if span >= size:
            text = f"{int(span // size)} {unit}"
            return f"{text} ago" if seconds > 0 else f"in {text}"
    return "just now"  # unreachable: span >= 1 matches the last unit


def absolute(value: dt.datetime | str | None) -> str:
    """``value`` in UTC to the second ("2026-12-02 10:00:00 UTC"), or "never"."""
    when = _parse(value)
    if when is None:
        return "never"
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
