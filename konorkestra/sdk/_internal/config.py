"""Immutable config snapshots handed to applications.

Invariants:

* A :class:`Config` never changes after creation: its mapping is built from
  frozen values (dicts become read-only mappings, lists become tuples), so an
  application can share it across threads and keep it as "the old config".
* The JSON received from the agent is kept privately and never handed out;
  :meth:`Config.to_dict` returns a fresh, mutable deep copy.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

Source = Literal["agent", "disk"]


def freeze(value: Any) -> Any:
    """A deep read-only view of a JSON value: dict → mappingproxy, list → tuple."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


@dataclass(frozen=True, eq=False, repr=False)
class Config(Mapping[str, Any]):
    """One release of a group: ConfigSet name → its (read-only) data.

    ``release``, ``sequence`` and ``digest`` name the release; ``stale`` is true
    when the agent could not confirm it is still current; ``source`` is
    ``"agent"`` when live and ``"disk"`` when read from the agent's data
    directory because the agent was unreachable.
    """

    group: str
    release: str
    sequence: int
    digest: str
    raw: Mapping[str, Any] = field(repr=False)
    stale: bool = False
    source: Source = "agent"
    _frozen: Mapping[str, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_frozen", {k: freeze(v) for k, v in self.raw.items()})

    def __getitem__(self, name: str) -> Any:
        return self._frozen[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._frozen)

    def __len__(self) -> int:
        return len(self._frozen)

    def __repr__(self) -> str:
        return (
            f"Config(group={self.group!r}, release={self.release!r}, "
            f"sequence={self.sequence}, stale={self.stale}, source={self.source!r}, "
            f"configsets={sorted(self._frozen)!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A mutable deep copy of the data (ConfigSet name → data)."""
        return copy.deepcopy(dict(self.raw))

    def evolve(self, **changes: Any) -> Config:
        """A copy with ``stale``/``source`` changed (same release, same data)."""
        return replace(self, **changes)


def config_from_message(msg: Mapping[str, Any], source: Source = "agent") -> Config:
    """Build from a ``get`` response, a ``release`` event or a ``release.json``."""
    raw = msg["config"]
    if not isinstance(raw, dict):
        raise ValueError("config must be an object")
    sequence = msg["sequence"]
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        raise ValueError("sequence must be a positive integer")
    return Config(
        group=str(msg["group"]),
        release=str(msg["release"]),
        sequence=sequence,
        digest=str(msg.get("digest", "")),
        raw=copy.deepcopy(raw),
        stale=bool(msg.get("stale", False)),
        source=source,
    )
