"""Bind one ConfigSet's data to an application dataclass, live.

Invariants:

* :func:`build` either returns a fully checked instance or raises
  :class:`BindError` naming the path of the first bad value; it never returns a
  half-valid object. The instance owns fresh containers (never the snapshot's).
* A field is looked up by its name, then by its camelCase spelling
  (``timeout_ms`` ↔ ``timeoutMs``); keys that match no field are ignored.
  Supported field types: ``str``, ``int``, ``float`` (ints accepted), ``bool``,
  ``None``, ``Any``, ``Literal``, unions / ``Optional``, ``list[T]``,
  ``tuple[T, ...]``, ``dict[str, T]`` and nested dataclasses. A
  ``__post_init__`` that raises ``ValueError``/``TypeError`` fails the bind.
* A :class:`Binding` holds the last instance that validated; a release that
  fails validation is acked ``failed`` and leaves :attr:`Binding.value` as it was.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from konorkestra.sdk._internal.config import Config
from konorkestra.sdk._internal.errors import BindError

T = TypeVar("T")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def build(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` against type ``tp`` and return a fresh instance of it."""
    if tp is Any:
        return _thaw(value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build_dataclass(tp, value, path)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        for option in args:
            try:
                return build(option, value, path)
            except BindError:
                continue
        raise BindError(f"{path}: {value!r} matches none of {' | '.join(map(_type_name, args))}")
    if origin is typing.Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        raise BindError(f"{path}: expected one of {list(args)!r}, got {value!r}")
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            raise BindError(f"{path}: expected a list, got {type(value).__name__}")
        item = args[0] if args else Any
        items = [build(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return items if (origin or tp) is list else tuple(items)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise BindError(f"{path}: expected an object, got {type(value).__name__}")
        item = args[1] if len(args) == 2 else Any
        return {k: build(item, v, f"{path}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp in (str, bool):
        if isinstance(value, tp):
            return value
    elif tp is None or tp is type(None):
        if value is None:
            return None
    else:
        raise BindError(f"{path}: unsupported field type {_type_name(tp)}")
    raise BindError(f"{path}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")


def _build_dataclass(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, Mapping):
        raise BindError(f"{path}: expected an object, got {type(value).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key = f.name if f.name in value else _camel(f.name)
        if key in value:
            kwargs[f.name] = build(hints[f.name], value[key], f"{path}.{key}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise BindError(f"{path}.{_camel(f.name)}: missing")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise BindError(f"{path}: {exc}") from exc


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value


def bind_config(cfg: Config, name: str, cls: type[T]) -> T:
    """The ConfigSet ``name`` of ``cfg`` as a checked ``cls`` instance."""
    if name not in cfg.raw:
        raise BindError(f"release {cfg.release} has no ConfigSet {name!r}")
    result: T = build(cls, cfg.raw[name], name)
    return result


class Binding(Generic[T]):
    """A live, validated view of one ConfigSet as a dataclass instance."""

    def __init__(self, group: str, name: str, cls: type[T], value: T, release: str) -> None:
        self.group = group
        self.name = name
        self.cls = cls
        self._value = value
        self._release = release

    @property
    def value(self) -> T:
        """The instance built from the newest release that validated."""
        return self._value

    @property
    def release(self) -> str:
        """The release :attr:`value` comes from."""
        return self._release

    def _update(self, new: Config, old: Config | None) -> None:
        self._value = bind_config(new, self.name, self.cls)
        self._release = new.release

    def __repr__(self) -> str:
        return f"Binding({self.group}/{self.name} @ {self._release}: {self._value!r})"
