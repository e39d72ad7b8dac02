"""Where the agent's socket and data directory are, and the on-disk fallback.

Rules (docs/reference/protocol.md): the socket is an explicit path, else
``KONORKESTRA_SOCKET``, else ``/run/konorkestra/agent.sock`` when it exists,
else ``<data>/agent.sock``. The data directory is an explicit path, else
``KONORKESTRA_DATA``, else the socket's directory when it contains
``current/``, else ``/var/lib/konorkestra``. The fallback only ever reads.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from konorkestra.sdk._internal.config import Config, config_from_message

log = logging.getLogger("konorkestra.sdk")

ROOT_SOCKET = Path("/run/konorkestra/agent.sock")
DEFAULT_DATA = Path("/var/lib/konorkestra")


def resolve_data_dir(explicit: str | os.PathLike[str] | None, socket: Path | None) -> Path:
    """The agent's data directory (see the module rules)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("KONORKESTRA_DATA")
    if env:
        return Path(env)
    if socket is not None and (socket.parent / "current").is_dir():
        return socket.parent
    return DEFAULT_DATA


def resolve_socket(explicit: str | os.PathLike[str] | None, data_dir: Path | None) -> Path:
    """The agent's socket path (see the module rules)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("KONORKESTRA_SOCKET")
    if env:
        return Path(env)
    if ROOT_SOCKET.exists():
        return ROOT_SOCKET
    return (data_dir or resolve_data_dir(None, None)) / "agent.sock"


def read_release(data_dir: Path, group: str) -> Config | None:
    """``<data>/current/<group>/release.json`` as a ``source="disk"`` config, if valid."""
    if not group or "/" in group or "\0" in group or group in (".", ".."):
        return None
    path = data_dir / "current" / group / "release.json"
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("group", group) != group:
            raise ValueError(f"file names group {doc.get('group')!r}")
        return config_from_message({**doc, "group": group, "stale": False}, source="disk")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
