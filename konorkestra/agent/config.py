"""The agent's config file: ``<data>/agent.toml`` (optional; every key has a default).

Example ``agent.toml``::

    socket = "/run/konorkestra/agent.sock"   # default: that when root, else <data>/agent.sock
    allow_uids = [0, 1000]                    # default: any uid may connect (socket mode 0660)
    keep = 5                                  # releases kept per group (rollback without network)
    report_interval = 2.0                     # seconds between report batches
    backoff_max = 30.0                        # cap of the jittered exponential back-off
    fallback_poll = 300.0                     # slow poll when long-polls keep ending early
    clock_skew = 60.0                         # tolerance when judging expiry
    sync = "stream"                           # or "long-poll" (for proxies that buffer)
    centers = ["https://center-b:8443"]       # more Center replicas (same CA), for failover

    [hooks.checkout]                          # run after each new release of group checkout
    command = ["/usr/local/bin/reload-nginx", "--graceful"]   # argv, or one string (shlex)
    timeout = 30.0

Example::

    >>> cfg = AgentConfig.parse({"keep": 3, "hooks": {"web": {"command": "true"}}})
    >>> cfg.keep, cfg.hooks["web"].command, cfg.hooks["web"].timeout
    (3, ('true',), 30.0)

Invariants:

* Unknown keys and values of the wrong type are a :class:`ConfigError` naming
  the key: a typo never silently falls back to a default.
* Command-line options (``--socket``, ``--allow-uid``) override the file.
* ``centers`` are tried after the URL the node enrolled with, each an
  ``https://`` URL; the Center's CA pinned at enrollment verifies all of them.
* Hooks run without a shell; a string command is split with :func:`shlex.split`.
"""

from __future__ import annotations

import os
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

CONFIG_NAME = "agent.toml"
SYNC_MODES = ("stream", "long-poll")
ROOT_SOCKET = Path("/run/konorkestra/agent.sock")


class ConfigError(Exception):
    """The agent config file is unreadable or wrong; the message names the key."""


@dataclass(frozen=True)
class HookConfig:
    """An exec hook: argv and timeout in seconds."""

    command: tuple[str, ...]
    timeout: float = 30.0


@dataclass(frozen=True)
class AgentConfig:
    """Every agent setting, with defaults."""

    socket: Path | None = None
    allow_uids: frozenset[int] | None = None
    keep: int = 5
    report_interval: float = 2.0
    backoff_max: float = 30.0
    fallback_poll: float = 300.0
    clock_skew: float = 60.0
    poll_wait: float = 55.0
    sync: str = "stream"
    """``stream`` (one long-lived stream per agent) or ``long-poll``."""
    centers: tuple[str, ...] = ()
    """More Center URLs (replicas sharing one store) to fail over to."""
    hooks: Mapping[str, HookConfig] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> AgentConfig:
        """Check a decoded TOML document."""
        known = {
            "socket", "allow_uids", "keep", "report_interval", "backoff_max",
            "fallback_poll", "clock_skew", "poll_wait", "sync", "centers", "hooks",
        }  # fmt: skip
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(unknown)}; known: {sorted(known)}")
        kw: dict[str, Any] = {}
        if "socket" in raw:
            kw["socket"] = Path(_typed(raw, "socket", str))
        if "allow_uids" in raw:
            uids = raw["allow_uids"]
            if not isinstance(uids, list) or not all(_is_int(u) and u >= 0 for u in uids):
                raise ConfigError("allow_uids must be a list of non-negative integers")
            kw["allow_uids"] = frozenset(uids)
        if "keep" in raw:
            keep = raw["keep"]
            if not _is_int(keep) or keep < 1:
                raise ConfigError("keep must be an integer >= 1")
            kw["keep"] = keep
        for key in ("report_interval", "backoff_max", "fallback_poll", "clock_skew", "poll_wait"):
            if key in raw:
                value = raw[key]
                if not (_is_int(value) or isinstance(value, float)) or value < 0:
                    raise ConfigError(f"{key} must be a non-negative number of seconds")
                kw[key] = float(value)
        if "sync" in raw:
            sync = raw["sync"]
            if sync not in SYNC_MODES:
                raise ConfigError(f"sync must be one of {', '.join(SYNC_MODES)}, not {sync!r}")
            kw["sync"] = sync
        if "centers" in raw:
            kw["centers"] = _centers(raw["centers"])
        if "hooks" in raw:
            kw["hooks"] = _hooks(raw["hooks"])
        return cls(**kw)

    @classmethod
    def load(cls, data_dir: Path) -> AgentConfig:
        """``<data>/agent.toml`` if present, else the defaults."""
        path = data_dir / CONFIG_NAME
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror}") from None
        try:
            raw = tomllib.loads(text.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        try:
            return cls.parse(raw)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def with_overrides(
        self, *, socket: Path | None = None, allow_uids: frozenset[int] | None = None
    ) -> AgentConfig:
        """Command-line options win over the file."""
        cfg = self
        if socket is not None:
            cfg = replace(cfg, socket=socket)
        if allow_uids is not None:
            cfg = replace(cfg, allow_uids=allow_uids)
        return cfg

    def socket_path(self, data_dir: Path) -> Path:
        """The configured socket, else the default (root: /run/konorkestra, else <data>)."""
        if self.socket is not None:
            return self.socket
        return ROOT_SOCKET if os.geteuid() == 0 else data_dir / "agent.sock"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _typed(raw: Mapping[str, Any], key: str, kind: type) -> Any:
    value = raw[key]
    if not isinstance(value, kind):
        raise ConfigError(f"{key} must be a {kind.__name__}")
    return value


def _centers(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(u, str) for u in raw):
        raise ConfigError('centers must be a list of URLs, e.g. ["https://center-b:8443"]')
    for url in raw:
        if not url.startswith("https://") or len(url) < 9 or any(c.isspace() for c in url):
            raise ConfigError(f"centers: {url[:100]!r} is not an https:// URL")
    return tuple(u.rstrip("/") for u in raw)


def _hooks(raw: object) -> dict[str, HookConfig]:
    if not isinstance(raw, dict):
        raise ConfigError("hooks must be a table of [hooks.<group>] tables")
    out = {}
    for group, spec in raw.items():
        where = f"hooks.{group}"
        if not isinstance(spec, dict) or set(spec) - {"command", "timeout"}:
            raise ConfigError(f"{where} takes exactly: command, timeout")
        command = spec.get("command")
        if isinstance(command, str):
            argv = tuple(shlex.split(command))
        elif isinstance(command, list) and all(isinstance(a, str) for a in command):
            argv = tuple(command)
        else:
            raise ConfigError(f"{where}.command must be a string or a list of strings")
        if not argv:
            raise ConfigError(f"{where}.command is empty")
        timeout = spec.get("timeout", 30.0)
        if not (_is_int(timeout) or isinstance(timeout, float)) or not 0 < timeout <= 3600:
            raise ConfigError(f"{where}.timeout must be a number of seconds in (0, 3600]")
        out[str(group)] = HookConfig(argv, float(timeout))
    return out
