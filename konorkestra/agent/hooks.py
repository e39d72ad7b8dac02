"""Exec hooks: run a command after a group's new release is committed (apps without an SDK).

Example::

    result = await run_hook(HookConfig(("systemctl", "reload", "nginx"), 30.0), committed)
    result.status, result.error          # "applied", None  |  "failed", "exit status 1: …"
    record(visibility, result)           # shows up like an SDK ack, client "hook:<group>"

The command runs without a shell, with the agent's environment plus::

    KONORKESTRA_GROUP      checkout
    KONORKESTRA_RELEASE    checkout-4-0123456789abcdef
    KONORKESTRA_SEQUENCE   4
    KONORKESTRA_DIGEST     sha256:…
    KONORKESTRA_RELEASE_DIR  <data>/releases/checkout/4   (config/, files/, release.json)
    KONORKESTRA_CONFIG     <data>/releases/checkout/4/release.json

Invariants:

* Exit status 0 is ``applied``; anything else, a timeout, or a command that
  cannot start is ``failed`` with a one-line ``error`` (the last line of stderr
  when there is one). A hook never raises into the sync loop.
* A hook that outlives its ``timeout`` is killed with its whole process group.
* The result is recorded in :class:`~konorkestra.agent.visibility.Visibility`
  as a delivery and an ack of the hook's process (pid, uid, gid, exe, start
  time), so the Center shows it beside SDK processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from konorkestra.agent.config import HookConfig
from konorkestra.agent.peers import PeerIdentity, read_exe, read_start_time
from konorkestra.agent.visibility import Visibility

MAX_OUTPUT = 64 * 1024


class HookRelease(Protocol):
    """What a hook is told about the release (the store's ``CommittedRelease`` fits)."""

    @property
    def group(self) -> str: ...
    @property
    def release_id(self) -> str: ...
    @property
    def sequence(self) -> int: ...
    @property
    def digest(self) -> str: ...
    @property
    def path(self) -> Path: ...


@dataclass(frozen=True)
class HookResult:
    """How one hook run ended."""

    group: str
    release: str
    sequence: int
    status: Literal["applied", "failed"]
    error: str | None
    exit_code: int | None
    seconds: float
    peer: PeerIdentity


def hook_env(release: HookRelease) -> dict[str, str]:
    """The environment a hook runs with."""
    return {
        **os.environ,
        "KONORKESTRA_GROUP": release.group,
        "KONORKESTRA_RELEASE": release.release_id,
        "KONORKESTRA_SEQUENCE": str(release.sequence),
        "KONORKESTRA_DIGEST": release.digest,
        "KONORKESTRA_RELEASE_DIR": str(release.path),
        "KONORKESTRA_CONFIG": str(release.path / "release.json"),
    }


def _last_line(output: bytes) -> str:
    lines = [ln for ln in output.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1].strip()[:500] if lines else ""


async def run_hook(hook: HookConfig, release: HookRelease) -> HookResult:
    """Run ``hook`` for ``release``; see the module invariants."""
    started = time.monotonic()
    me = PeerIdentity(os.getpid(), os.getuid(), os.getgid(), shutil.which(hook.command[0]), None)

    def done(status: Literal["applied", "failed"], error: str | None, code: int | None,
             peer: PeerIdentity) -> HookResult:  # fmt: skip
        elapsed = round(time.monotonic() - started, 3)
        return HookResult(release.group, release.release_id, release.sequence, status, error,
                          code, elapsed, peer)  # fmt: skip

    try:
        proc = await asyncio.create_subprocess_exec(
            *hook.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=hook_env(release),
            start_new_session=True,
        )
    except OSError as exc:
        return done("failed", f"cannot run {hook.command[0]}: {exc.strerror or exc}", None, me)
    peer = PeerIdentity(
        proc.pid, os.getuid(), os.getgid(),
        read_exe(proc.pid) or me.exe, read_start_time(proc.pid),
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(hook.timeout):
            stderr = b""
            while chunk := await proc.stderr.read(MAX_OUTPUT):
                stderr = (stderr + chunk)[-MAX_OUTPUT:]  # keep the tail
            await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return done("failed", f"timed out after {hook.timeout:g}s", None, peer)
    code = proc.returncode
    if code == 0:
        return done("applied", None, 0, peer)
    why = (
        f"exit status {code}"
        if code is not None and code > 0
        else f"killed by signal {-(code or 0)}"
    )
    line = _last_line(stderr)
    return done("failed", f"{why}: {line}" if line else why, code, peer)


def record(visibility: Visibility, result: HookResult) -> None:
    """Record a hook run like an SDK delivery + ack (client ``hook:<group>``)."""
    client = f"hook:{result.group}"
    visibility.delivered(
        result.peer, result.group, result.release, result.sequence, via="watch", client=client
    )
    visibility.acked(
        result.peer, result.group, result.release, result.status, result.error, client=client
    )
