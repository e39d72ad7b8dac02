"""``konorkestra agent run``: the agent process — store, UDS server, sync, reports, renewal.

Example::

    agent = Agent.from_data_dir(Path("/var/lib/konorkestra"), AgentConfig.load(data))
    asyncio.run(agent.run(stop_event))      # until stop_event is set (SIGTERM/SIGINT)

Start-up order (each step works with the Center down):

1. refuse to start when the data directory or the node key is accessible by
   others (:class:`StartupError`, one line saying what to chmod);
2. open the store (recovery; damaged blobs are re-fetched from the Center when
   it answers, otherwise served releases are marked ``needs_repair`` and
   repaired after the next successful sync);
3. re-verify the persisted freshness statement: a restart without network
   serves the committed releases, fresh until that statement expires;
4. serve the UDS socket; then sync, reporting, renewal and the status file run
   side by side until stopped.

Invariants:

* Nothing the Center does (down, slow, hostile) stops the UDS server; only a
  signal does. On stop (SIGTERM/SIGINT): sync and reporting stop, every UDS
  connection is closed (the protocol has no goodbye message: a watcher sees
  end-of-file and its SDK reconnects with back-off), the socket is removed, a
  last report is attempted for at most :data:`FINAL_REPORT_TIMEOUT` seconds,
  the status file says ``running: false``; the process exits well within 2 s,
  without a traceback.
* The node certificate is renewed at two thirds of its lifetime; new
  connections use the new one, in-flight requests finish on the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from konorkestra import sdnotify
from konorkestra.agent.centerclient import CenterClient, ClientFactory
from konorkestra.agent.config import AgentConfig
from konorkestra.agent.heap import settle_heap
from konorkestra.agent.identity import (
    AgentIdentity,
    IdentityError,
    IdentityPaths,
    RenewalImpossible,
    load_identity,
    renew,
)
from konorkestra.agent.reporting import Reporter
from konorkestra.agent.served import ServedState, utcnow
from konorkestra.agent.store import AgentStore
from konorkestra.agent.sync import Node, Syncer
from konorkestra.agent.uds import UdsServer
from konorkestra.agent.visibility import Visibility
from konorkestra.durable import atomic_write
from konorkestra.model.types import Digest

log = logging.getLogger(__name__)
STATUS_FILE = "status.json"
FINAL_REPORT_TIMEOUT = 1.0
"""Seconds a stopping agent spends on its last report (a Center that hangs must not hold it)."""
MIN_RENEWAL_GAP = 2.0
"""Seconds between two renewals, even when the Center issues very short-lived certificates."""


class StartupError(Exception):
    """The agent refuses to start; the message says what to fix."""


def check_permissions(data_dir: Path) -> None:
    """Refuse a data directory or node key that others can read (or write)."""
    try:
        st = data_dir.stat()
    except FileNotFoundError:
        raise StartupError(f"data directory {data_dir} does not exist; run `agent join`") from None
    if not stat.S_ISDIR(st.st_mode):
        raise StartupError(f"{data_dir} is not a directory")
    if st.st_mode & 0o006:
        raise StartupError(
            f"data directory {data_dir} is accessible by others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); run: chmod o-rwx {data_dir}"
        )
    key = IdentityPaths.under(data_dir).credentials
    try:
        kst = key.stat()
    except FileNotFoundError:
        raise StartupError(f"{data_dir}: not enrolled (no {key}); run `agent join`") from None
    if kst.st_mode & 0o077:
        raise StartupError(
            f"node key {key} is readable by others (mode {stat.S_IMODE(kst.st_mode):04o}); "
            f"run: chmod 600 {key}"
        )


def mtls_factory(ident: AgentIdentity) -> ClientFactory:
    """Keep-alive HTTP client with the node certificate and the pinned CA as only anchor."""
    ctx = ident.ssl_context()

    def make() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=ident.center_url,
            verify=ctx,
            timeout=httpx.Timeout(30.0, connect=10.0),
            # 30 s keep-alive: the reports that follow a release reuse one connection
            # instead of a new mTLS handshake each (httpx's default drops them after 5 s).
            limits=httpx.Limits(
                max_connections=8, max_keepalive_connections=4, keepalive_expiry=30.0
            ),
        )

    return make


class Agent:
    """One agent process's worth of components."""

    def __init__(
        self,
        data_dir: Path,
        config: AgentConfig,
        node: Node,
        client_factory: ClientFactory,
        *,
        identity: AgentIdentity | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.data_dir, self.config, self.node = data_dir, config, node
        self.identity = identity
        self.clock = clock
        self.visibility = Visibility()
        self.served = ServedState(node.groups, clock=clock)
        urls = [identity.center_url, *config.centers] if identity and config.centers else []
        self.client = CenterClient(client_factory, urls)
        self.reporter = Reporter(self.visibility, self.client.report,
                                 interval=config.report_interval)  # fmt: skip
        self.socket = config.socket_path(data_dir)
        self.store: AgentStore | None = None
        self.syncer: Syncer | None = None
        self.uds: UdsServer | None = None
        self.started = time.time()
        self.ready = asyncio.Event()

    @classmethod
    def from_data_dir(cls, data_dir: Path, config: AgentConfig) -> Agent:
        """The agent of an enrolled data directory (permissions checked first)."""
        check_permissions(data_dir)
        try:
            ident = load_identity(data_dir)
        except IdentityError as exc:
            raise StartupError(str(exc)) from None
        try:
            root = ident.paths.trust_root.read_bytes()
        except OSError as exc:
            raise StartupError(f"{ident.paths.trust_root}: {exc.strerror}") from None
        node = Node(ident.node_id, tuple(ident.groups), root)
        return cls(data_dir, config, node, mtls_factory(ident), identity=ident)

    def _open_store(self, loop: asyncio.AbstractEventLoop) -> AgentStore:
        def fetch(digest: Digest) -> bytes:
            fut = asyncio.run_coroutine_threadsafe(self.client.blob(digest, 64 << 20), loop)
            return fut.result(timeout=60)

        return AgentStore.open(self.data_dir, keep=self.config.keep, fetch_blob=fetch)

    async def start(self) -> None:
        """Open the store, load freshness, serve the socket (no network needed)."""
        loop = asyncio.get_running_loop()
        self.store = await asyncio.to_thread(self._open_store, loop)
        await asyncio.to_thread(self.served.load, self.store)
        self.syncer = Syncer(
            self.node, self.store, self.client, self.served, self.reporter,
            config=self.config, visibility=self.visibility, data_dir=self.data_dir,
            clock=self.clock,
        )  # fmt: skip
        self.syncer.on_store_broken = lambda: self._reopen(loop)
        self.syncer.load_freshness()
        self.served.on_stale = self._stale_changed
        self.uds = UdsServer(
            self.served, self.socket, node=self.node.node_id,
            visibility=self.visibility, allow_uids=self.config.allow_uids,
        )  # fmt: skip
        self.served.attach(self.uds)
        self.socket.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        await self.uds.start()
        for group in self.node.groups:
            self.reporter.stale(group, self.served.is_stale())
        log.info("agent %s serving %s (groups: %s)", self.node.node_id, self.socket,
                 ", ".join(self.node.groups))  # fmt: skip

    def _reopen(self, loop: asyncio.AbstractEventLoop) -> AgentStore:
        if self.store is not None:
            self.store.close()
        self.store = self._open_store(loop)
        return self.store

    def _stale_changed(self, flag: bool) -> None:
        for group in self.node.groups:
            self.reporter.stale(group, flag)
        with contextlib.suppress(RuntimeError):  # no loop: the status loop writes it later
            asyncio.get_running_loop().run_in_executor(None, self.write_status)

    async def run(self, stop: asyncio.Event) -> None:
        """Start, then sync/report/renew until ``stop`` is set; then shut down cleanly."""
        await self.start()
        settle_heap()  # start-up objects out of the collector's sight (see heap.py)
        assert self.syncer is not None
        tasks = [
            asyncio.create_task(self.syncer.run(), name="sync"),
            asyncio.create_task(self.reporter.run(), name="report"),
            asyncio.create_task(self._status_loop(), name="status"),
        ]
        if self.identity is not None:
            tasks.append(asyncio.create_task(self._renew_loop(), name="renew"))
        self.ready.set()
        try:
            await stop.wait()
        finally:
            await self.shutdown(tasks)

    async def shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.uds is not None:
            await self.uds.close()
        await self.reporter.close(timeout=FINAL_REPORT_TIMEOUT)
        await self.client.close()
        self.served.close()
        self.write_status(running=False)
        if self.store is not None:
            self.store.close()

    # -- certificate renewal -------------------------------------------------------------

    async def _renew_loop(self) -> None:
        retry = 5.0
        while True:
            ident = self.identity
            assert ident is not None
            cert = ident.certificate
            start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
            due = start + (end - start) * 2 / 3
            await asyncio.sleep(min(300.0, max(0.0, (due - utcnow()).total_seconds())))
            if not ident.renewal_due():
                continue
            try:
                new = await asyncio.to_thread(renew, ident)
            except RenewalImpossible as exc:
                log.error("%s", exc)
                self.reporter.error("identity", str(exc))
                return
            except IdentityError as exc:
                log.warning("certificate renewal failed, retrying in %.0fs: %s", retry, exc)
                await asyncio.sleep(retry)
                retry = min(retry * 2, 300.0)
                continue
            retry = 5.0
            self.identity = new
            await self.client.renew(mtls_factory(new))
            log.info(
                "node certificate renewed; valid until %s", new.certificate.not_valid_after_utc
            )
            await asyncio.sleep(MIN_RENEWAL_GAP)  # never a tight loop, whatever the lifetime

    # -- status file -------------------------------------------------------------------

    def status(self, *, running: bool = True) -> dict[str, Any]:
        """What ``konorkestra agent status`` shows about the running process."""
        s = self.syncer.stats if self.syncer is not None else None
        groups: dict[str, Any] = {}
        for group in self.node.groups:
            rel = self.served.current(group)
            groups[group] = None if rel is None else {
                "release": rel.release_id, "sequence": rel.sequence, "digest": rel.digest,
                "committed_at": rel.committed_at, "needs_repair": rel.needs_repair,
            }  # fmt: skip
        deadline = self.served.deadline
        return {
            "running": running,
            "pid": os.getpid(),
            "node": self.node.node_id,
            "socket": str(self.socket),
            "started_at": self.started,
            "updated_at": time.time(),
            "stale": self.served.is_stale(),
            "fresh_until": None if deadline is None else deadline.isoformat(),
            "groups": groups,
            "sync": None
            if s is None
            else {
                "mode": s.mode,
                "last_sync": s.last_sync,
                "last_error": s.last_error,
                "failures": s.failures,
                "commits": s.commits,
                "refusals": s.refusals,
                "refused": s.refused,
                "repairs": s.repairs,
            },
            "reports": {
                "sent": self.reporter.sent,
                "pending": self.reporter.pending(),
                "last_error": self.reporter.last_error,
            },
            "processes": len(self.visibility.snapshot()),
            "certificate_not_after": None
            if self.identity is None
            else self.identity.certificate.not_valid_after_utc.isoformat(),
        }

    def write_status(self, *, running: bool = True) -> None:
        body = json.dumps(self.status(running=running), indent=1, sort_keys=True).encode()
        try:
            # A view for `agent status`, rewritten every few seconds: atomic, not durable.
            atomic_write(self.data_dir / STATUS_FILE, body, 0o600, durable=False)
        except OSError as exc:
            log.warning("cannot write the status file: %s", exc)

    async def _status_loop(self) -> None:
        """Rewrite the status file when it changes (checked every 2 s), else every 60 s."""
        last: dict[str, Any] = {}
        written = 0.0
        while True:
            now = {k: v for k, v in self.status().items() if k != "updated_at"}
            if now != last or time.monotonic() - written > 60:
                await asyncio.to_thread(self.write_status)
                last, written = now, time.monotonic()
            await asyncio.sleep(2.0)


def run_agent(agent: Agent) -> None:
    """Run ``agent`` until SIGTERM or SIGINT (blocking).

    Under systemd (``Type=notify``) it sends ``READY=1`` once the store is open and
    the socket listens, and ``STOPPING=1`` when a stop signal arrives.
    """

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def stopping() -> None:
            sdnotify.notify(sdnotify.STOPPING)
            stop.set()

        async def notify_ready() -> None:  # cancelled (never sent) if start-up fails
            await agent.ready.wait()
            sdnotify.notify(sdnotify.READY)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping)
        ready = asyncio.create_task(notify_ready(), name="sd-notify-ready")
        try:
            await agent.run(stop)
        finally:
            ready.cancel()

    asyncio.run(main())
