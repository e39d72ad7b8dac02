"""``konorkestra agent status``: what this node serves, read from its data directory.

Example::

    $ konorkestra agent status --data /var/lib/konorkestra
    node        3f2a9c0d1e7b4a55 (web-1) -> https://center:8443
    agent       running (pid 4242), socket /run/konorkestra/agent.sock
    freshness   fresh until 2026-11-27T00:05:00+00:00
    sync        long-poll, last 2026-11-27T00:00:12Z, no error
    checkout    checkout-4-0123456789abcdef  (seq 4, committed 2026-11-27T00:00:12Z)

Invariants:

* Read-only: it never opens the store (which would run recovery) and works
  whether or not the agent runs; everything comes from ``identity/node.json``,
  ``current/<group>/release.json``, ``trust/high_water.json`` and the status
  file the running agent rewrites within two seconds of a change.
* "running" means the status file says so *and* its pid is alive.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from konorkestra.agent.daemon import STATUS_FILE


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def collect(data_dir: Path) -> dict[str, Any]:
    """Everything ``agent status`` prints, as JSON-compatible data."""
    node = _read_json(data_dir / "identity" / "node.json") or {}
    marks = (_read_json(data_dir / "trust" / "high_water.json") or {}).get("groups", {})
    daemon = _read_json(data_dir / STATUS_FILE) or {}
    running = bool(daemon.get("running")) and _alive(daemon.get("pid"))
    groups = {}
    for group in sorted(set(node.get("groups", [])) | set(marks)):
        rel = _read_json(data_dir / "current" / group / "release.json")
        live = (daemon.get("groups") or {}).get(group) or {}
        groups[group] = {
            "release": rel.get("release") if rel else None,
            "sequence": rel.get("sequence") if rel else None,
            "digest": rel.get("digest") if rel else None,
            "committed_at": rel.get("committed_at") if rel else None,
            "high_water": (marks.get(group) or {}).get("sequence"),
            "needs_repair": bool(live.get("needs_repair")),
        }
    return {
        "data_dir": str(data_dir),
        "enrolled": bool(node),
        "node": node.get("node_id"),
        "name": node.get("name"),
        "center": node.get("center_url"),
        "running": running,
        "pid": daemon.get("pid") if running else None,
        "socket": daemon.get("socket"),
        "stale": daemon.get("stale") if running else None,
        "fresh_until": daemon.get("fresh_until"),
        "sync": daemon.get("sync") if running else None,
        "reports": daemon.get("reports") if running else None,
        "processes": daemon.get("processes") if running else None,
        "certificate_not_after": daemon.get("certificate_not_after"),
        "groups": groups,
    }


def _when(epoch: object) -> str:
    if not isinstance(epoch, int | float):
        return "never"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render(info: dict[str, Any]) -> str:
    """The text ``agent status`` prints for people."""
    lines = []
    if not info["enrolled"]:
        lines.append(f"node        not enrolled ({info['data_dir']}); run `konorkestra agent join`")
    else:
        lines.append(f"node        {info['node']} ({info['name']}) -> {info['center']}")
    if info["running"]:
        lines.append(f"agent       running (pid {info['pid']}), socket {info['socket']}")
        fresh = "STALE" if info["stale"] else f"fresh until {info['fresh_until']}"
        lines.append(f"freshness   {fresh}")
        sync = info["sync"] or {}
        error = sync.get("last_error") or "no error"
        lines.append(
            f"sync        {sync.get('mode')}, last {_when(sync.get('last_sync'))}, {error}"
        )
        for group, refused in (sync.get("refused") or {}).items():
            lines.append(f"refused     {group}: {refused['release']}: {refused['code']}: "
                         f"{refused['reason']}")  # fmt: skip
        reports = info["reports"] or {}
        last = f", {reports['last_error']}" if reports.get("last_error") else ""
        lines.append(
            f"reports     {reports.get('sent')} sent, {reports.get('pending')} pending{last}"
        )
        lines.append(f"processes   {info['processes']} seen")
    else:
        lines.append("agent       not running (serving from disk is still possible for SDKs)")
    for group, g in info["groups"].items():
        if g["release"] is None:
            lines.append(f"{group:<11} no release yet")
            continue
        repair = "  NEEDS REPAIR" if g["needs_repair"] else ""
        lines.append(f"{group:<11} {g['release']}  (seq {g['sequence']}, committed "
                     f"{g['committed_at']}){repair}")  # fmt: skip
    return "\n".join(lines)
