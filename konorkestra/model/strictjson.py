"""Strict JSON parsing for untrusted input: bytes in, a value or a typed refusal out.

Example::

    >>> from konorkestra.model.strictjson import JsonRefused, parse_object
    >>> parse_object(b'{"role": "viewer"}')
    {'role': 'viewer'}
    >>> try:
    ...     parse_object(b'{"role": "viewer", "role": "admin"}')
    ... except JsonRefused as exc:
    ...     print(exc.problem, exc)
    duplicate_key duplicate key 'role' in an object

Used by every Center route that reads a body (:mod:`konorkestra.center.app.web`) and
by the agent's Unix-socket server (:mod:`konorkestra.agent.udsconn`).

Invariants:

* Nothing here reads the clock, the network or the disk; the only exception
  that leaves :func:`parse` is :class:`JsonRefused` (never ``RecursionError``,
  never the interpreter's "Exceeds the limit (4300 digits)" ``ValueError``).
* Every refusal carries a stable ``problem`` word (:data:`PROBLEMS`) for machines
  and a one-sentence message for a person; syntax errors also carry line/column.
* Refused, in this order: input that is not UTF-8 (``not_utf8``); empty input
  (``empty``); nesting deeper than :data:`MAX_DEPTH` (``too_deep``), found by a
  linear pre-scan of brackets outside strings, before the decoder recurses;
  malformed JSON (``syntax``); a number literal longer than
  :data:`MAX_NUMBER_CHARS` characters (``number_too_long``), checked on the
  literal before any conversion; ``NaN``/``Infinity`` or a float literal that
  overflows to infinity (``non_finite``); an object with a key twice
  (``duplicate_key``: the first-wins/last-wins mismatch between parsers is
  never ours to decide); a ``\\u`` escape that leaves a lone surrogate
  (``lone_surrogate``: such a string cannot be encoded as UTF-8 again).
* Work is linear in the input's length: the pre-scan runs in the regular
  expression engine and C-level iterators, and the decoder is the stdlib's.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any, Final

MAX_DEPTH: Final = 64
"""Deepest allowed nesting of arrays and objects (the top-level value is depth 1)."""
MAX_NUMBER_CHARS: Final = 1000
"""Longest allowed number literal, in characters (sign and exponent included)."""

PROBLEMS: Final = frozenset(
    {
        "not_utf8",
        "empty",
        "too_deep",
        "syntax",
        "number_too_long",
        "non_finite",
        "duplicate_key",
        "lone_surrogate",
        "not_object",
    }
)


class JsonRefused(ValueError):
    """Input that is not acceptable JSON; ``problem`` is one of :data:`PROBLEMS`."""

    def __init__(
        self, problem: str, message: str, *, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        assert problem in PROBLEMS
        self.problem = problem
        self.message = message
        self.line = line
        self.column = column

    def details(self) -> dict[str, Any]:
        """Machine-readable fields: ``problem`` and, for syntax errors, ``line``/``column``."""
        out: dict[str, Any] = {"problem": self.problem}
        if self.line is not None:
            out.update(line=self.line, column=self.column)
        return out


# A string literal, escapes included; an unterminated one runs to the end of the
# input, so every quote starts at most one match and the scan stays linear.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def nesting_depth(data: bytes) -> int:
    """The deepest bracket nesting in ``data``, ignoring brackets inside strings."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _parse_int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise JsonRefused(
            "number_too_long", f"a number has more than {MAX_NUMBER_CHARS} characters"
        )
    return int(literal)


def _parse_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise JsonRefused(
            "number_too_long", f"a number has more than {MAX_NUMBER_CHARS} characters"
        )
    value = float(literal)
    if not math.isfinite(value):
        raise JsonRefused("non_finite", f"the number {literal[:40]} is too large to represent")
    return value


def _parse_constant(name: str) -> Any:
    raise JsonRefused("non_finite", f"{name} is not JSON; numbers must be finite")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRefused("duplicate_key", f"duplicate key {key[:80]!r} in an object")
            seen.add(key)
    return obj


def _has_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse(data: bytes) -> Any:
    """Decode ``data`` as one strict JSON value; :class:`JsonRefused` says why not."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonRefused("not_utf8", f"not UTF-8 (bad byte at offset {exc.start})") from None
    if not text.strip():
        raise JsonRefused("empty", "empty; send a JSON value")
    opened = data.count(b"[") + data.count(b"{")  # a cheap bound first
    if opened > MAX_DEPTH and (depth := nesting_depth(data)) > MAX_DEPTH:
        raise JsonRefused("too_deep", f"nested {depth} levels deep; at most {MAX_DEPTH} allowed")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except json.JSONDecodeError as exc:
        raise JsonRefused(
            "syntax",
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            line=exc.lineno,
            column=exc.colno,
        ) from None
    if "\\u" in text and _has_surrogate(value):
        raise JsonRefused("lone_surrogate", "a \\u escape leaves a lone UTF-16 surrogate")
    return value


def parse_object(data: bytes) -> dict[str, Any]:
    """Like :func:`parse`, and the value must be an object (``not_object`` otherwise)."""
    value = parse(data)
    if not isinstance(value, dict):
        raise JsonRefused("not_object", f"not a JSON object but {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "a number"
