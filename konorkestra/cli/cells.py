"""Table cells that stay on one line: compact details, a diagnostic, a shortened text (pure).

Example::

    details_cell({"group": "checkout", "sequence": 2, "reason": ""})
    # 'group=checkout sequence=2'
    fit("a long message that goes on", 12)                  # 'a long mess…'
    diagnostic_cell({"file": "groups/x.yaml", "line": 3, "message": "no policy"}, 2, None)
    # 'groups/x.yaml:3: no policy (+1 more)'
    last_column_width([("1", "alice"), ("22", "bob")], 80)  # what is left for a last column

Invariants:

* Nothing here reads the terminal, the clock or the network: widths come in as
  arguments (``None`` = no limit, what piped output and ``-o json`` get).
* :func:`fit` never returns more than ``width`` characters, and returns the text
  unchanged when it fits; a shortened text ends with ``…``.
* :func:`diagnostic_cell` always keeps its ``(+N more)`` suffix: the message is
  what gets shortened.
* Text is returned as plain strings; the table puts it in cells, never reads it
  as markup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from konorkestra.repo.diagnostics import location

ELLIPSIS = "…"
MIN_CELL = 12
"""The narrowest a shortened cell gets, however narrow the terminal."""


def fit(text: str, width: int | None) -> str:
    """``text`` on one line, at most ``width`` characters (``None``: whole)."""
    flat = " ".join(text.split())
    if width is None or len(flat) <= width:
        return flat
    return flat[: max(0, width - 1)] + ELLIPSIS


def _value(value: object) -> str:
    if isinstance(value, str):
        return value if value and " " not in value and "=" not in value else json.dumps(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def details_cell(details: Mapping[str, object], width: int | None = None) -> str:
    """An audit event's details as ``key=value`` pairs, keys sorted; strings bare
    unless they hold a space or ``=``, other values as compact JSON. Empty values
    (null, ``""``, ``[]``, ``{}``) are left out: ``-o json`` has every key."""
    shown = sorted(k for k, v in details.items() if v not in (None, "", [], {}))
    return fit(" ".join(f"{key}={_value(details[key])}" for key in shown), width)


def diagnostic_cell(first: Mapping[str, object] | None, count: int, width: int | None) -> str:
    """``file:line: message (+N more)`` of a commit's first diagnostic, ``""`` without one.

    ``count`` is how many diagnostics the commit has in all (the first included)."""
    if first is None:
        return ""
    more = f" (+{count - 1} more)" if count > 1 else ""
    text = f"{location(first)}: {first.get('message', '')}"
    room = None if width is None else max(MIN_CELL, width - len(more))
    return fit(text, room) + more


def last_column_width(rows: Sequence[Sequence[str]], total: int) -> int:
    """The width a last column may take so that a rich table of ``rows`` (the other
    columns' cells) plus that column fits ``total`` columns; at least :data:`MIN_CELL`.

    Counts rich's default box: one border per column and at the end, one space of
    padding each side of a cell."""
    columns = len(rows[0]) if rows else 0
    widths = [max(len(row[i]) for row in rows) for i in range(columns)]
    used = sum(widths) + 3 * (columns + 1) + 1
    return max(MIN_CELL, total - used)
