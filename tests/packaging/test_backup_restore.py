"""What docs/guide/operations.md promises about backups, done on real processes.

* A Center's SQLite store copied with the online backup API *while it runs*,
  plus ``keys/``, ``trust/``, ``pki/`` and ``admin.token``, makes a new data
  directory from which a Center serves the same Releases under the same CA pin
  (agents that pinned it need not join again).
* An agent whose data directory was emptied but for ``identity/`` (and
  ``agent.toml``) while it was stopped fetches its Releases from the Center
  again on start, without joining again.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.agents import AgentProcess, TlsCenter
from tests.helpers.configrepo import seeded
from tests.helpers.poll import wait_for

pytestmark = pytest.mark.slow
CENTER_FILES = ("keys", "trust", "pki", "admin.token")
AGENT_STORE = ("releases", "current", "blobs", "log", "trust", "status.json")
"""Everything but ``identity/`` and ``agent.toml``. ``trust/`` goes too: the agent tells
the Center the sequences it holds from its high-water marks there, so with the marks
kept and the Releases gone the Center would have nothing new to send."""


def releases(center: TlsCenter) -> list[tuple[str, int, str]]:
    rows: list[dict[str, Any]] = center.get("/v1/releases", params={"limit": 1000})["releases"]
    return sorted((r["id"], r["sequence"], r["digest"]) for r in rows)


def test_center_backed_up_while_running_restores(tmp_path: Path) -> None:
    bare, _work = seeded(tmp_path)
    first = TlsCenter(tmp_path / "a", repo=bare).start()
    restored = TlsCenter(tmp_path / "b", repo=bare)
    try:
        wait_for(lambda: first.latest("payments"), timeout=30, what="the first Release")
        before = releases(first)
        restored.data.mkdir(mode=0o700)
        with (
            sqlite3.connect(first.data / "center.db") as src,
            sqlite3.connect(restored.data / "center.db") as dst,
        ):
            src.backup(dst)  # the Center is running: this is the online backup
        for name in CENTER_FILES:
            source = first.data / name
            if source.is_dir():
                shutil.copytree(source, restored.data / name)
            else:
                shutil.copy2(source, restored.data / name)
    finally:
        first.stop()
    restored.start()
    try:
        assert restored.pin == first.pin
        assert releases(restored) == before
    finally:
        restored.stop()


def test_agent_refetches_a_deleted_store(tmp_path: Path) -> None:
    bare, _work = seeded(tmp_path)
    center = TlsCenter(tmp_path / "center", repo=bare).start()
    agent = AgentProcess(tmp_path / "agent", center)
    try:
        release = wait_for(lambda: center.latest("payments"), timeout=30, what="a Release")
        agent.join(center.join_token("payments")).start()
        wait_for(lambda: agent.serves(release["id"], "payments"), timeout=30,
                 what="the agent to serve the Release")  # fmt: skip
        agent.stop()
        for name in AGENT_STORE:
            path = agent.data / name
            assert path.exists(), f"{name}: the layout this test and the docs name changed"
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        agent.start()
        wait_for(lambda: agent.serves(release["id"], "payments"), timeout=30,
                 what="the agent to serve the Release again")  # fmt: skip
    finally:
        agent.stop()
        center.stop()
