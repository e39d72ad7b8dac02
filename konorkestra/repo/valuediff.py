"""The difference between two JSON values, as paths a reviewer can read.

Example::

    >>> from konorkestra.repo.valuediff import diff_values
    >>> [c.line() for c in diff_values({"a": 1, "b": [1]}, {"a": 2, "b": [1, 2]})]
    ['~ /a: 1 → 2', '+ /b/1: 2']
    >>> old = {"up": [{"name": "x", "url": "a"}, {"name": "y", "url": "b"}]}
    >>> new = {"up": [{"name": "y", "url": "c"}]}
    >>> [c.line() for c in diff_values(old, new)]
    ['- /up/[name=x]: {"name": "x", "url": "a"}', '~ /up/[name=y]/url: "b" → "c"']

This is the value half of the semantic diff: its rules are stated, with ids,
in :mod:`konorkestra.repo.semdiff` (SD3–SD8) and tested there by name. In short:
objects by key (code-point order), lists by index unless keyed by ``name``,
values shown as compact JSON and elided past :data:`ELIDE_AT` characters, and
no difference ever goes unseen: ``diff_values(a, b) == ()`` exactly when ``a``
and ``b`` are the same JSON value.

Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from konorkestra.model.types import JsonObject

ELIDE_AT = 120
"""A value whose compact JSON is longer than this many characters is cut here (SD7)."""
KEY_FIELD = "name"
"""The field that makes a list of objects keyed (SD5)."""

Op = Literal["add", "remove", "change"]
SIGN: dict[str, str] = {"add": "+", "remove": "-", "change": "~"}
"""The mark of each operation in text output."""

Segment = str | int


@dataclass(frozen=True)
class Shown:
    """A JSON value as a reviewer sees it: compact JSON, keys sorted, maybe elided."""

    text: str
    """The compact JSON, cut to :data:`ELIDE_AT` characters plus ``…`` when longer."""
    chars: int
    """The length of the full compact JSON."""

    @classmethod
    def of(cls, value: Any) -> Shown:
        full = json.dumps(value, ensure_ascii=False, sort_keys=True)
        if len(full) <= ELIDE_AT:
            return cls(full, len(full))
        return cls(full[:ELIDE_AT] + "…", len(full))

    @property
    def elided(self) -> bool:
        return self.chars > ELIDE_AT

    def __str__(self) -> str:
        return f"{self.text} ({self.chars} chars)" if self.elided else self.text


@dataclass(frozen=True)
class Change:
    """One path whose value was added, removed or changed."""

    op: Op
    path: str
    """JSON pointer (RFC 6901 escaping); keyed list elements are ``[name=X]`` (SD6)."""
    old: Shown | None = None
    new: Shown | None = None

    def line(self, prefix: str = "") -> str:
        """``~ /a: 1 → 2``, ``+ /b: true``, ``- /c: "x"`` (``prefix`` goes before the path)."""
        where = f"{SIGN[self.op]} {prefix}{self.path}"
        if self.op == "change":
            return f"{where}: {self.old} → {self.new}"
        return f"{where}: {self.new if self.op == 'add' else self.old}"

    def to_json(self) -> JsonObject:
        """``{"op", "path", "old"?, "new"?}``: values as their shown text; when a value
        was elided, ``old_chars``/``new_chars`` give its full length."""
        out: JsonObject = {"op": self.op, "path": self.path}
        for side, shown in (("old", self.old), ("new", self.new)):
            if shown is not None:
                out[side] = shown.text
                if shown.elided:
                    out[f"{side}_chars"] = shown.chars
        return out


def pointer(path: Sequence[Segment]) -> str:
    """``("a", 0, "[name=x]")`` -> ``/a/0/[name=x]`` with RFC 6901 escaping."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"  # before int: True is an int in Python, never in JSON (SD4)
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _keys(items: Sequence[Any]) -> list[str] | None:
    """The ``name`` of every element, when all are objects with unique string names."""
    names: list[str] = []
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get(KEY_FIELD), str):
            return None
        names.append(item[KEY_FIELD])
    return names if len(set(names)) == len(names) else None


def _keyed(old: Sequence[Any], new: Sequence[Any]) -> tuple[list[str], list[str]] | None:
    old_names, new_names = _keys(old), _keys(new)
    if old_names is None or new_names is None or not (old or new):
        return None
    common = set(old_names) & set(new_names)
    if [n for n in old_names if n in common] != [n for n in new_names if n in common]:
        return None  # reordered: by index, so the reorder shows (SD8)
    return old_names, new_names


class _Walk:
    def __init__(self) -> None:
        self.out: list[Change] = []

    def emit(self, op: Op, path: tuple[Segment, ...], old: Any = None, new: Any = None) -> None:
        self.out.append(
            Change(
                op,
                pointer(path),
                Shown.of(old) if op != "add" else None,
                Shown.of(new) if op != "remove" else None,
            )
        )

    def value(self, old: Any, new: Any, path: tuple[Segment, ...]) -> None:
        kind = _kind(old)
        if kind != _kind(new):
            self.emit("change", path, old, new)
        elif kind == "object":
            self.mapping(old, new, path)
        elif kind == "array":
            self.array(old, new, path)
        elif old != new:
            self.emit("change", path, old, new)

    def mapping(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: tuple[Segment, ...]
    ) -> None:
        for key in sorted(set(old) | set(new)):
            if key not in new:
                self.emit("remove", (*path, key), old=old[key])
            elif key not in old:
                self.emit("add", (*path, key), new=new[key])
            else:
                self.value(old[key], new[key], (*path, key))

    def array(self, old: Sequence[Any], new: Sequence[Any], path: tuple[Segment, ...]) -> None:
        keyed = _keyed(old, new)
        if keyed is None:
            for i in range(max(len(old), len(new))):
                if i >= len(new):
                    self.emit("remove", (*path, i), old=old[i])
                elif i >= len(old):
                    self.emit("add", (*path, i), new=new[i])
                else:
                    self.value(old[i], new[i], (*path, i))
            return
        old_names, new_names = keyed
        by_old = dict(zip(old_names, old, strict=True))
        for name, item in zip(old_names, old, strict=True):
            if name not in new_names:
                self.emit("remove", (*path, f"[{KEY_FIELD}={name}]"), old=item)
        for name, item in zip(new_names, new, strict=True):
            segment = f"[{KEY_FIELD}={name}]"
            if name in by_old:
                self.value(by_old[name], item, (*path, segment))
            else:
                self.emit("add", (*path, segment), new=item)


def diff_values(old: Any, new: Any) -> tuple[Change, ...]:
    """Every change from ``old`` to ``new`` (JSON values), in a deterministic order."""
    walk = _Walk()
    walk.value(old, new, ())
    return tuple(walk.out)


def same_value(old: Any, new: Any) -> bool:
    """True when ``old`` and ``new`` are the same JSON value (SD4)."""
    return not diff_values(old, new)
