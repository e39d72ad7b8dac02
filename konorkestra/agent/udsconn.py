"""One client connection of the agent's Unix-socket server (``docs/reference/protocol.md`` v1).

:class:`Connection` frames request lines, answers ``hello``/``get``/``watch``/
``unwatch``/``ack``/``report`` and carries watch events; :mod:`konorkestra.agent.uds`
owns the socket and the fan-out. A connection sees its server only through
:class:`ConnectionHost`, declared here, so this module never imports the
server: the arrows run ``uds`` → ``udsconn`` → ``udswire``.

Invariants (the server's, see :mod:`konorkestra.agent.uds`, as one peer sees them):

* A peer can only ever get error responses; an exception in a handler becomes
  an ``internal`` error for that request, never a closed server.
* An over-long line costs exactly one ``too_large`` error and the connection
  stays usable.
* Responses follow request order; a watch's ``release`` events have strictly
  increasing sequences, each above the watch's ``after``.
* An ``ack`` or ``report`` about a group this agent does not serve is
  ``not_found``; an ``ack`` of a release not of that group is ``bad_request``.
* Request lines are parsed by :func:`konorkestra.agent.udswire.parse_request`
  (strict JSON, the same parser as the Center's request bodies).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from konorkestra.agent.peers import PeerIdentity, peer_of
from konorkestra.agent.udswire import (
    MAX_LINE,
    PROTOCOL_VERSION,
    ProtocolError,
    ReleaseSnapshot,
    RequestId,
    StateSource,
    encode,
    is_id,
    is_release_of,
    json_bool,
    need_int,
    need_str,
    parse_request,
    request_id,
)
from konorkestra.agent.visibility import Visibility

log = logging.getLogger("konorkestra.agent.uds")


class ConnectionHost(Protocol):
    """What a connection needs from its server; :class:`~konorkestra.agent.uds.UdsServer` is one."""

    @property
    def source(self) -> StateSource: ...
    @property
    def visibility(self) -> Visibility: ...
    @property
    def agent_info(self) -> Mapping[str, str]: ...
    @property
    def allow_uids(self) -> frozenset[int] | None: ...
    @property
    def max_pending_bytes(self) -> int: ...
    @property
    def max_watches(self) -> int: ...
    @property
    def connections(self) -> set[Connection]:
        """Open connections; a connection adds itself once accepted, removes itself when lost."""
        ...

    @property
    def watchers(self) -> dict[str, set[Watch]]:
        """Active watches per group; a connection registers and forgets its own."""
        ...

    @property
    def served(self) -> Mapping[str, Collection[str]]:
        """Per group, the release ids lately handed to apps (what an ``ack`` may name)."""
        ...

    def release_fields(self, group: str, snap: ReleaseSnapshot) -> str:
        """JSON members (no braces) naming ``snap`` of ``group``."""
        ...


# -- one connection ------------------------------------------------------------------

_UNKNOWN_PEER = PeerIdentity(pid=0, uid=-1, gid=-1, exe=None, start_time=None)


class Watch:
    """One active ``watch``: what its client has been sent so far."""

    __slots__ = ("conn", "group", "id", "last_seq", "last_stale")

    def __init__(
        self, conn: Connection, wid: RequestId, group: str, last_seq: int, last_stale: bool
    ) -> None:
        self.conn = conn
        self.id = wid
        self.group = group
        self.last_seq = last_seq
        self.last_stale = last_stale


class Connection(asyncio.Protocol):
    """Frames lines, answers requests and carries watch events for one peer."""

    def __init__(self, server: ConnectionHost) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.peer = _UNKNOWN_PEER
        self.client: str | None = None
        self.watches: dict[RequestId, Watch] = {}
        self._buf = bytearray()
        self._discarding = False
        self._closed = False

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        try:
            self.peer = peer_of(transport.get_extra_info("socket"))
        except OSError as exc:
            log.warning("cannot read peer credentials: %s", exc)
        allowed = self.server.allow_uids
        if allowed is not None and self.peer.uid not in allowed:
            log.warning("refused uid %d (pid %d)", self.peer.uid, self.peer.pid)
            self._error(None, "forbidden", f"uid {self.peer.uid} is not allowed")
            self.close()
            return
        transport.set_write_buffer_limits(high=256 * 1024)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.server.connections.discard(self)
        for watch in self.watches.values():
            self._forget(watch)
        self.watches.clear()

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            nl = data.find(b"\n")
            if nl < 0:
                return
            self._discarding = False
            data = data[nl + 1 :]
        buf = self._buf
        buf += data
        start = 0
        while not self._closed:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            if nl - start > MAX_LINE:
                self._error(None, "too_large", f"request line exceeds {MAX_LINE} bytes")
            else:
                self._handle(bytes(buf[start:nl]))
            start = nl + 1
        del buf[:start]
        if len(buf) > MAX_LINE:
            buf.clear()
            self._discarding = True
            self._error(None, "too_large", f"request line exceeds {MAX_LINE} bytes")

    def eof_received(self) -> bool | None:
        return None  # close our side once queued responses are flushed

    # -- output ----------------------------------------------------------------------

    def write(self, text: str) -> bool:
        """Queue ``text``; drop the connection if its backlog is over the bound."""
        if self._closed or self.transport is None:
            return False
        self.transport.write(text.encode())
        if self.transport.get_write_buffer_size() > self.server.max_pending_bytes:
            log.warning("dropping slow reader pid %d (%s)", self.peer.pid, self.peer.exe)
            self._closed = True
            self.transport.abort()
            return False
        return True

    def close(self) -> None:
        if not self._closed and self.transport is not None:
            self._closed = True
            self.transport.close()

    def notify(self, watch: Watch, snap: ReleaseSnapshot | None, stale: bool) -> None:
        """Send ``watch`` whatever it has not seen: a newer release, or a stale change."""
        wid = encode(watch.id)
        if snap is not None and snap.sequence > watch.last_seq:
            watch.last_seq = snap.sequence
            watch.last_stale = stale
            fields = self.server.release_fields(watch.group, snap)
            text = f'{{"event":"release","watch":{wid},{fields},"stale":{json_bool(stale)}}}\n'
            if self.write(text):
                self.server.visibility.delivered(
                    self.peer,
                    watch.group,
                    snap.release_id,
                    snap.sequence,
                    via="watch",
                    client=self.client,
                )
        elif stale != watch.last_stale:
            watch.last_stale = stale
            group = encode(watch.group)
            self.write(
                f'{{"event":"status","watch":{wid},"group":{group},"stale":{json_bool(stale)}}}\n'
            )

    def _reply(self, rid: RequestId, fields: dict[str, object]) -> None:
        self.write(encode({"id": rid, "ok": True, **fields}) + "\n")

    def _error(self, rid: RequestId | None, code: str, message: str) -> None:
        body = {"id": rid, "ok": False, "error": {"code": code, "message": message}}
        self.write(encode(body) + "\n")

    def _forget(self, watch: Watch) -> None:
        group = self.server.watchers.get(watch.group)
        if group is not None:
            group.discard(watch)
            if not group:
                del self.server.watchers[watch.group]

    # -- requests --------------------------------------------------------------------

    def _handle(self, line: bytes) -> None:
        if not line.strip():
            return  # blank lines are ignored
        rid: RequestId | None = None
        try:
            req = parse_request(line)
            rid = request_id(req)
            op = req.get("op")
            if not isinstance(op, str):
                raise ProtocolError("bad_request", "`op` must be a string")
            handler = _HANDLERS.get(op)
            if handler is None:
                raise ProtocolError("unknown_op", f"unknown op {op!r}")
            handler(self, rid, req)
        except ProtocolError as exc:
            self._error(rid, exc.code, exc.message)
        except Exception as exc:
            log.exception("request failed")
            self._error(rid, "internal", f"{type(exc).__name__}: {exc}")

    def _op_hello(self, rid: RequestId, req: dict[str, Any]) -> None:
        version = need_int(req, "protocol")
        client = req.get("client", {})
        if not isinstance(client, dict):
            raise ProtocolError("bad_request", "`client` must be an object")
        if isinstance(client.get("name"), str):
            self.client = client["name"]
        if version != PROTOCOL_VERSION:
            raise ProtocolError(
                "unsupported_protocol",
                f"protocol {version} is not supported; supported: [{PROTOCOL_VERSION}]",
            )
        self._reply(rid, {"protocol": PROTOCOL_VERSION, "agent": self.server.agent_info})

    def _op_get(self, rid: RequestId, req: dict[str, Any]) -> None:
        group = need_str(req, "group")
        source = self.server.source
        snap = source.current(group)
        if snap is None:
            raise ProtocolError("not_found", f"no committed release for group {group!r}")
        fields = self.server.release_fields(group, snap)
        stale = json_bool(source.stale(group))
        if self.write(f'{{"id":{encode(rid)},"ok":true,{fields},"stale":{stale}}}\n'):
            self.server.visibility.delivered(
                self.peer, group, snap.release_id, snap.sequence, via="get", client=self.client
            )

    def _op_watch(self, rid: RequestId, req: dict[str, Any]) -> None:
        group = need_str(req, "group")
        after = need_int(req, "after", default=0)
        if after < 0:
            raise ProtocolError("bad_request", "`after` must be >= 0")
        if rid in self.watches:
            raise ProtocolError("bad_request", f"watch {rid!r} is already active")
        if len(self.watches) >= self.server.max_watches:
            raise ProtocolError("bad_request", f"at most {self.server.max_watches} watches")
        snap = self.server.source.current(group)
        stale = self.server.source.stale(group)
        watch = Watch(self, rid, group, after, stale)
        self.watches[rid] = watch
        self.server.watchers.setdefault(group, set()).add(watch)
        self._reply(rid, {"group": group})
        self.notify(watch, snap, stale)

    def _op_unwatch(self, rid: RequestId, req: dict[str, Any]) -> None:
        wid = req.get("watch")
        if not is_id(wid):
            raise ProtocolError("bad_request", "`watch` must be a string or an integer")
        watch = self.watches.pop(wid, None)
        if watch is not None:
            self._forget(watch)
        self._reply(rid, {})

    def _served(self, group: str) -> ReleaseSnapshot:
        """The group's committed release; ``not_found`` for a group this agent does not serve
        (an ack or report about it would make the Center refuse the whole report batch)."""
        snap = self.server.source.current(group)
        if snap is None:
            raise ProtocolError("not_found", f"no committed release for group {group!r}")
        return snap

    def _op_ack(self, rid: RequestId, req: dict[str, Any]) -> None:
        group = need_str(req, "group")
        release = need_str(req, "release")
        snap = self._served(group)
        served = self.server.served.get(group, {})
        if not is_release_of(group, release, snap.release_id, snap.sequence, served):
            raise ProtocolError(
                "bad_request", f"`release` {release!r} is not a release of group {group!r}"
            )
        status = req.get("status")
        if status != "applied" and status != "failed":
            raise ProtocolError("bad_request", '`status` must be "applied" or "failed"')
        error = req.get("error")
        if error is not None and not isinstance(error, str):
            raise ProtocolError("bad_request", "`error` must be a string")
        self.server.visibility.acked(self.peer, group, release, status, error, client=self.client)
        self._reply(rid, {})

    def _op_report(self, rid: RequestId, req: dict[str, Any]) -> None:
        group = need_str(req, "group")
        metric = need_str(req, "metric")
        self._served(group)
        value = req.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProtocolError("bad_request", "`value` must be a number")
        try:
            number = float(value)
        except OverflowError:
            number = float("inf")
        if number in (float("inf"), float("-inf")):
            raise ProtocolError("bad_request", "`value` must be finite")
        self.server.visibility.reported(self.peer, group, metric, number, client=self.client)
        self._reply(rid, {})


_HANDLERS = {
    "hello": Connection._op_hello,
    "get": Connection._op_get,
    "watch": Connection._op_watch,
    "unwatch": Connection._op_unwatch,
    "ack": Connection._op_ack,
    "report": Connection._op_report,
}
