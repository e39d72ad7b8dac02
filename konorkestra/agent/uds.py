"""The agent's Unix-socket server, speaking ``docs/reference/protocol.md`` version 1.

Example::

    from konorkestra.agent.uds import UdsServer
    from konorkestra.testing.memstate import InMemoryState

    state = InMemoryState()                     # or an adapter over the agent store
    server = UdsServer(state, "/run/konorkestra/agent.sock", node="node-a")
    await server.start()
    state.put("checkout", release_id="checkout-3", sequence=3, digest=d, config={...})
    server.publish("checkout")                  # on the event loop
    server.publish_threadsafe("checkout")       # from a committing thread
    await server.close()

Invariants:

* The server never trusts a peer: any byte sequence gets at most an error
  response; only the offending connection can be closed, never the server.
* A request line longer than :data:`~konorkestra.agent.udswire.MAX_LINE` bytes
  (not counting ``\\n``) gets exactly one ``too_large`` error; the rest of that
  line is discarded and the connection stays usable.
* Responses on one connection follow request order; events interleave.
* Per watch, ``release`` events carry strictly increasing sequences, each
  greater than the watch's ``after``: a watcher never sees a release twice.
  When several commits land between two notifications, only the newest is sent.
* Writes never block the event loop. A connection whose unsent output exceeds
  ``max_pending_bytes`` is dropped, so a slow reader cannot stall the others;
  while its output is above the transport's high-water mark its requests are
  not read (back-pressure).
* The socket file is created with mode ``0o600`` under a umask and then chmod-ed
  to ``mode`` (default ``0o660``); it is never more permissive in between. An
  existing socket file is replaced only if nobody answers on it; a non-socket
  file is never removed. On close the file is removed only if it is still ours.
* Peers whose uid is not in ``allow_uids`` (when given) get one ``forbidden``
  error with ``id: null`` and are disconnected.

The server owns the socket, the connections and the fan-out; each peer is a
:class:`~konorkestra.agent.udsconn.Connection`, which sees the server only as a
:class:`~konorkestra.agent.udsconn.ConnectionHost`. The protocol's vocabulary
(version, line limit, encoding, :class:`~konorkestra.agent.udswire.StateSource`)
is :mod:`konorkestra.agent.udswire`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
from collections.abc import Collection
from pathlib import Path

from konorkestra import __version__
from konorkestra.agent.udsconn import Connection, Watch
from konorkestra.agent.udswire import ReleaseSnapshot, StateSource, encode
from konorkestra.agent.visibility import Visibility

log = logging.getLogger(__name__)


class SocketInUseError(OSError):
    """Another live process is serving the socket path."""


SERVED_KEPT = 32
"""Release ids remembered per group for checking acks."""


class UdsServer:
    """Serve a :class:`StateSource` to local applications over a Unix socket."""

    connection_class: type[Connection] = Connection
    """Serves one peer; the test fake (``konorkestra.testing``) records requests."""

    def __init__(
        self,
        source: StateSource,
        path: str | os.PathLike[str],
        *,
        node: str = "",
        visibility: Visibility | None = None,
        allow_uids: Collection[int] | None = None,
        mode: int = 0o660,
        max_pending_bytes: int = 8 * 1024 * 1024,
        max_watches: int = 256,
    ) -> None:
        self.source = source
        self.path = Path(path)
        self.node = node
        self.visibility = visibility if visibility is not None else Visibility()
        self.allow_uids: frozenset[int] | None = (
            None if allow_uids is None else frozenset(allow_uids)
        )
        self.mode = mode
        self.max_pending_bytes = max_pending_bytes
        self.max_watches = max_watches
        self.agent_info = {"version": __version__, "node": node}
        self.watchers: dict[str, set[Watch]] = {}
        self.connections: set[Connection] = set()
        self._encoded: dict[str, tuple[tuple[int, str], str]] = {}
        self.served: dict[str, dict[str, None]] = {}
        """Per group, the ids of the last :data:`SERVED_KEPT` releases handed to apps
        (oldest first): what an ``ack`` may name."""
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ident: tuple[int, int] | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Create the socket (see the module invariants) and start accepting."""
        self._loop = asyncio.get_running_loop()
        remove_stale_socket(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old = os.umask(0o177)
            try:
                sock.bind(str(self.path))
            finally:
                os.umask(old)
            os.chmod(self.path, self.mode)
            st = os.stat(self.path)
            self._ident = (st.st_dev, st.st_ino)
            sock.setblocking(False)
            self._server = await self._loop.create_unix_server(
                lambda: self.connection_class(self), sock=sock, backlog=1024
            )
        except BaseException:
            sock.close()
            raise
        log.info("serving %s (mode %o)", self.path, self.mode)

    async def close(self) -> None:
        """Stop accepting, disconnect everyone, remove the socket file if still ours."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        try:
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._ident:
                os.unlink(self.path)
        except FileNotFoundError:
            pass

    async def serve_forever(self) -> None:
        """Start (if needed) and serve until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            await self.close()

    # -- notifications -------------------------------------------------------------

    def publish(self, group: str) -> None:
        """A new release of ``group`` was committed; notify its watchers. Loop thread only."""
        self._fanout(group, None)

    def set_stale(self, group: str, flag: bool) -> None:
        """``group``'s stale flag is now ``flag`` (as ``source.stale`` reports). Loop only."""
        self._fanout(group, flag)

    def publish_threadsafe(self, group: str) -> None:
        """:meth:`publish` from any thread. Raises ``RuntimeError`` if not started."""
        self._running_loop().call_soon_threadsafe(self.publish, group)

    def set_stale_threadsafe(self, group: str, flag: bool) -> None:
        """:meth:`set_stale` from any thread. Raises ``RuntimeError`` if not started."""
        self._running_loop().call_soon_threadsafe(self.set_stale, group, flag)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            raise RuntimeError("the UDS server is not running")
        return self._loop

    def _fanout(self, group: str, stale: bool | None) -> None:
        watches = self.watchers.get(group)
        if not watches:
            return
        try:
            snap = self.source.current(group)
            if stale is None:
                stale = self.source.stale(group)
        except Exception:
            log.exception("state source failed for group %r; watchers not notified", group)
            return
        for watch in list(watches):
            watch.conn.notify(watch, snap, stale)

    # -- helpers for connections ---------------------------------------------------

    def release_fields(self, group: str, snap: ReleaseSnapshot) -> str:
        """JSON members (no braces) naming a release, encoded once per release."""
        key = (snap.sequence, snap.digest)
        hit = self._encoded.get(group)
        if hit is not None and hit[0] == key:
            return hit[1]
        text = encode(
            {
                "group": group,
                "release": snap.release_id,
                "sequence": snap.sequence,
                "digest": snap.digest,
                "config": snap.config,
            }
        )[1:-1]
        self._encoded[group] = (key, text)
        served = self.served.setdefault(group, {})
        served[snap.release_id] = None
        if len(served) > SERVED_KEPT:
            del served[next(iter(served))]
        return text


def remove_stale_socket(path: Path) -> None:
    """Remove ``path`` if it is a socket nobody listens on.

    Raises :class:`SocketInUseError` if a process answers on it and
    ``FileExistsError`` if it is not a socket at all (never deleted).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise FileExistsError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:
        log.info("removing stale socket %s", path)
        os.unlink(path)
        return
    except FileNotFoundError:
        return
    finally:
        probe.close()
    raise SocketInUseError(f"another process is serving {path}")
