"""Tell systemd (or anything listening on ``$NOTIFY_SOCKET``) how a daemon is doing.

Example::

    from konorkestra import sdnotify

    sdnotify.notify(sdnotify.READY)      # once actually serving (Type=notify units)
    sdnotify.notify(sdnotify.STOPPING)   # when a stop begins

The protocol (``sd_notify(3)``) is one AF_UNIX datagram of newline-separated
``KEY=VALUE`` lines sent to the path in ``$NOTIFY_SOCKET``; a path that starts
with ``@`` names a socket in the abstract namespace (the ``@`` becomes a NUL
byte). The standard library does it; no libsystemd binding is needed.

Invariants:

* Without ``$NOTIFY_SOCKET`` (not started by systemd, or ``Type=simple``)
  :func:`notify` does nothing and returns False: a daemon behaves the same
  outside systemd.
* A notification never raises: a socket that vanished or refuses is logged
  once at debug level and reported as False. Telling the supervisor must never
  stop the daemon from serving.
* Each call sends exactly one datagram, with the ``MAINPID=`` of this process
  appended, so a notification from a helper thread is still attributed to the
  main process.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

READY = "READY=1"
STOPPING = "STOPPING=1"
ENV = "NOTIFY_SOCKET"


def socket_address(value: str) -> str | bytes | None:
    """The ``connect`` address ``$NOTIFY_SOCKET`` names, or None if it names none.

    >>> socket_address("/run/systemd/notify")
    '/run/systemd/notify'
    >>> socket_address("@sd-notify-1")
    b'\\x00sd-notify-1'
    >>> socket_address("") is None, socket_address("vsock:2:9") is None
    (True, True)
    """
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    return None  # empty, relative, or a transport we do not speak (vsock:)


def message(*states: str, pid: int | None = None) -> bytes:
    """The datagram for ``states``, plus ``MAINPID=``.

    >>> message(READY, "STATUS=serving", pid=42)
    b'READY=1\\nSTATUS=serving\\nMAINPID=42'
    """
    lines = [*states, f"MAINPID={os.getpid() if pid is None else pid}"]
    return "\n".join(lines).encode()


def notify(*states: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``states`` to ``$NOTIFY_SOCKET``; True if a datagram was sent."""
    env = os.environ if environ is None else environ
    address = socket_address(env.get(ENV, ""))
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message(*states))
    except OSError as exc:
        log.debug("sd_notify %s to %r failed: %s", states, address, exc)
        return False
    return True
