"""Fixtures for SDK tests: a real UDS server (in-memory state) on a temp socket."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from konorkestra.testing.memstate import InMemoryState
from konorkestra.testing.serverthread import ServerThread

CONFIG_1 = {"checkout-api": {"timeoutMs": 800, "retries": 2}, "payments": {"currency": "EUR"}}


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait for ``predicate()`` to hold, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.002)


def publish(srv: ServerThread, seq: int, config: dict[str, Any] | None = None) -> None:
    """Commit ``checkout-<seq>`` and notify watchers (returns once notified)."""
    body = {"group": "checkout", "release": f"checkout-{seq}", "sequence": seq}
    srv.apply({"publish": {**body, "config": config or CONFIG_1}})


def acks(srv: ServerThread) -> list[tuple[str, str, str | None]]:
    """(release, status, error) of every ack the server recorded, in order."""
    events = srv.call(lambda: list(srv.server.visibility._events))
    return [(e.release, e.status, e.error) for e in events if e.kind == "ack"]


class Recorder:
    """A callback that records (new.sequence, old.sequence) and can be waited on."""

    def __init__(self, fail_on: Callable[[Any], bool] = lambda cfg: False) -> None:
        self.calls: list[tuple[int, int | None]] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self._fail_on = fail_on

    def __call__(self, new: Any, old: Any) -> None:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.calls.append((new.sequence, None if old is None else old.sequence))
            if self._fail_on(new):
                raise ValueError(f"timeoutMs must be > 0 (release {new.release})")
        finally:
            with self._lock:
                self.active -= 1

    def wait_for(self, n: int) -> None:
        wait_until(lambda: len(self.calls) >= n)


@pytest.fixture
def state() -> InMemoryState:
    s = InMemoryState()
    s.put("checkout", release_id="checkout-1", sequence=1, config=CONFIG_1)
    return s


@pytest.fixture
def agent(state: InMemoryState, tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(state, tmp_path / "agent.sock", node="node-a") as srv:
        yield srv


# Test modules cannot import this file under --import-mode=importlib, so the
# helpers are handed out as fixtures.


@pytest.fixture(name="wait_until")
def _wait_until() -> Callable[..., None]:
    return wait_until


@pytest.fixture(name="publish")
def _publish() -> Callable[..., None]:
    return publish


@pytest.fixture(name="acks")
def _acks() -> Callable[[ServerThread], list[tuple[str, str, str | None]]]:
    return acks


@pytest.fixture(name="recorder")
def _recorder() -> type[Recorder]:
    return Recorder
