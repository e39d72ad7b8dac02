"""Commit-message trailers (``Key: value`` lines at the end of a message).

Example::

    >>> from konorkestra.repo.trailers import parse_trailers, trailer_values
    >>> message = "Drop web\\n\\nIt moved to the new cluster.\\n\\nKonorkestra-Allow-Delete: web\\n"
    >>> parse_trailers(message)
    [('Konorkestra-Allow-Delete', 'web')]
    >>> trailer_values(message, "konorkestra-allow-delete")
    ['web']

The reference is ``git interpret-trailers --parse --no-divider`` (Git's own
reading of a commit message's trailers); :mod:`tests.repo.test_trailers`
compares the two on many messages. This module reads only; it never adds.

Invariants:

* T1. The trailer block is the last paragraph of the message (paragraphs are
  separated by blank or whitespace-only lines); lines starting with ``#`` are
  comments and ignored, as ``git commit`` would strip them.
* T2. The first paragraph (the subject, even when it spans several lines) is
  never a trailer block: a one-paragraph message has no trailers.
* T3. A trailer line is a token of letters, digits and ``-``, optional spaces,
  ``:``, then the value. A line starting with whitespace continues the value of
  the trailer above it (RFC 822 folding); values are unfolded with one space.
* T4. The block counts as trailers when every line is a trailer or a
  continuation; or, as Git does, when at least a quarter of its lines are
  trailers and one of them is Git-generated (``Signed-off-by:`` or ``(cherry
  picked from commit``). Otherwise the message has no trailers at all.
* T5. Keys compare case-insensitively (:func:`trailer_values`); values are
  stripped of surrounding whitespace; order is the message's.
* Pure: text in, pairs out; no Git, no I/O.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"([A-Za-z0-9-]+)[ \t]*:(.*)\Z", re.DOTALL)
_GIT_GENERATED = ("Signed-off-by: ", "(cherry picked from commit ")


def _paragraphs(message: str) -> list[list[str]]:
    """Non-comment lines grouped into paragraphs (T1)."""
    out: list[list[str]] = []
    current: list[str] = []
    for line in message.splitlines():
        if line.startswith("#"):
            continue
        if line.strip():
            current.append(line.rstrip())
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def parse_trailers(message: str) -> list[tuple[str, str]]:
    """``(key, value)`` for each trailer of ``message``, in order (T1–T5)."""
    paragraphs = _paragraphs(message)
    if len(paragraphs) < 2:  # T2: the subject paragraph never holds trailers
        return []
    block = paragraphs[-1]
    pairs: list[list[str]] = []
    trailer_lines = other_lines = 0
    generated = False
    previous_was_trailer = False
    for line in block:
        if line[0] in " \t" and previous_was_trailer:
            pairs[-1][1] += " " + line.strip()  # T3: folded value
            continue
        found = _TOKEN.match(line)
        if found is not None:
            pairs.append([found.group(1), found.group(2).strip()])
            trailer_lines += 1
            previous_was_trailer = True
            generated = generated or line.startswith(_GIT_GENERATED[0])
        else:
            other_lines += 1
            previous_was_trailer = False
            generated = generated or line.startswith(_GIT_GENERATED[1])
    if other_lines and not (generated and trailer_lines * 3 >= other_lines):
        return []  # T4
    return [(key, value) for key, value in pairs]


def trailer_values(message: str, key: str) -> list[str]:
    """Values of every trailer named ``key`` (case-insensitive, T5), in order."""
    wanted = key.lower()
    return [value for k, value in parse_trailers(message) if k.lower() == wanted]
