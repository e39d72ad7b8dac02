"""Committed releases held in memory: the state the fake agent serves.

Example::

    state = InMemoryState.from_json({"groups": {"checkout": {
        "release": "checkout-3", "sequence": 3, "config": {"checkout-api": {"timeoutMs": 800}}}}})
    state.put("checkout", release_id="checkout-4", sequence=4, config={"checkout-api": {}})
    state.current("checkout").sequence          # 4

Invariants: a release is refused unless its sequence is above the group's
current one (as the agent's store refuses it); ``digest`` defaults to the digest
of ``config``; every method may be called from any thread.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from konorkestra.model.canonical import digest_value


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A committed release held in memory (satisfies ``udswire.ReleaseSnapshot``)."""

    release_id: str
    sequence: int
    digest: str
    config: Mapping[str, Any] = field(default_factory=dict)


class InMemoryState:
    """A :class:`~konorkestra.agent.udswire.StateSource` backed by dicts; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[str, Snapshot] = {}
        self._stale: dict[str, bool] = {}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> InMemoryState:
        """Build from ``{"groups": {g: {release, sequence, digest?, stale?, config}}}``."""
        state = cls()
        state.load(doc)
        return state

    def current(self, group: str) -> Snapshot | None:
        return self._current.get(group)

    def stale(self, group: str) -> bool:
        return self._stale.get(group, False)

    def put(
        self,
        group: str,
        *,
        release_id: str,
        sequence: int,
        config: Mapping[str, Any],
        digest: str | None = None,
    ) -> Snapshot:
        """Commit a release; ``digest`` defaults to the digest of ``config``."""
        snap = Snapshot(release_id, sequence, digest or digest_value(dict(config)), config)
        with self._lock:
            old = self._current.get(group)
            if old is not None and sequence <= old.sequence:
                raise ValueError(
                    f"sequence {sequence} of {group!r} is not above current {old.sequence}"
                )
            self._current[group] = snap
        return snap

    def put_json(self, group: str, body: Mapping[str, Any]) -> Snapshot:
        """:meth:`put` from the vector form ``{release, sequence, digest?, stale?, config}``."""
        snap = self.put(
            group,
            release_id=body["release"],
            sequence=body["sequence"],
            config=body.get("config", {}),
            digest=body.get("digest"),
        )
        if "stale" in body:
            self.set_stale(group, bool(body["stale"]))
        return snap

    def set_stale(self, group: str, flag: bool) -> None:
        with self._lock:
            self._stale[group] = flag

    def load(self, doc: Mapping[str, Any]) -> None:
        """Replace everything with the groups of a state document."""
        self.clear()
        for group, body in doc.get("groups", {}).items():
            self.put_json(group, body)

    def clear(self) -> None:
        with self._lock:
            self._current.clear()
            self._stale.clear()


def state_part(doc: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """Split a vector (``state`` + ``server``) or a bare state document."""
    if "steps" in doc or "state" in doc:
        return doc.get("state", {}), doc.get("server", {})
    return doc, {}
