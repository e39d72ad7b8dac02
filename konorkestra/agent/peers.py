"""Who is on the other end of a Unix socket.

Example::

    >>> import socket
    >>> a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    >>> peer = peer_of(a)
    >>> peer.pid == os.getpid() and peer.uid == os.getuid()
    True
    >>> peer.start_time is not None
    True
    >>> a.close(); b.close()

Invariants:

* ``pid``, ``uid`` and ``gid`` come from ``SO_PEERCRED``: the kernel captured
  them when the peer called ``connect()``. They are the only fields fit for
  authorization decisions.
* ``exe`` (the target of ``/proc/<pid>/exe``) and ``start_time`` (field 22 of
  ``/proc/<pid>/stat``, clock ticks since boot) are read at accept time and are
  advisory: the process may have exited already, or we may lack permission;
  then they are ``None``. Reading them never raises.
* ``(pid, start_time)`` names one process for the life of the machine: a reused
  pid has a different start time. :attr:`PeerIdentity.key` is that pair.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

_UCRED = struct.Struct("3i")  # struct ucred { pid_t pid; uid_t uid; gid_t gid; }


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """The process at the other end of a connection."""

    pid: int
    uid: int
    gid: int
    exe: str | None
    start_time: int | None

    @property
    def key(self) -> tuple[int, int | None]:
        """``(pid, start_time)``: tells a reused pid apart from its predecessor."""
        return (self.pid, self.start_time)

    def to_json(self) -> dict[str, object]:
        """Plain JSON form used in visibility reports."""
        return {
            "pid": self.pid,
            "uid": self.uid,
            "gid": self.gid,
            "exe": self.exe,
            "start_time": self.start_time,
        }


def peer_of(sock: socket.socket, *, proc: str = "/proc") -> PeerIdentity:
    """Read the peer's credentials and process facts from a connected AF_UNIX socket.

    Raises ``OSError`` only if ``SO_PEERCRED`` itself fails (not a Unix socket).
    """
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return PeerIdentity(
        pid=pid,
        uid=uid,
        gid=gid,
        exe=read_exe(pid, proc=proc),
        start_time=read_start_time(pid, proc=proc),
    )


def read_exe(pid: int, *, proc: str = "/proc") -> str | None:
    """The executable of ``pid``, or ``None`` when unknown (gone, no permission)."""
    if pid <= 0:
        return None
    try:
        return os.readlink(f"{proc}/{pid}/exe")
    except OSError:
        return None


def read_start_time(pid: int, *, proc: str = "/proc") -> int | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    if pid <= 0:
        return None
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return parse_start_time(stat)


def parse_start_time(stat: bytes) -> int | None:
    """Extract field 22 from the text of ``/proc/<pid>/stat``.

    Field 2 (``comm``) is parenthesised and may itself contain spaces and
    parentheses, so fields are counted from the *last* closing parenthesis.
    """
    close = stat.rfind(b")")
    if close < 0:
        return None
    rest = stat[close + 1 :].split()
    # rest[0] is field 3 (state), so field 22 is rest[22 - 3].
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None
