"""The sync loop: long-poll the Center, verify, fetch, commit, publish, report.

Example::

    client = CenterClient(lambda: httpx.AsyncClient(base_url=url, verify=ident.ssl_context()))
    syncer = Syncer(node, store, client, served, reporter, config=cfg, visibility=vis)
    await syncer.run()                  # until cancelled; never raises for Center trouble

For each Release the Center offers (``GET /v1/agent/desired``), in group order:

1. verify the bundle with :class:`konorkestra.trust.Verifier` (trust root,
   the store's persisted high-water marks, the node's scope, now);
2. take the blobs the store lacks from those inlined in the answer, and fetch
   the rest by digest: ConfigSet blobs first (each capped at its signed size
   and checked against its signed digest), then the file blobs they name (the
   store checks digest and declared size). An inlined blob is checked exactly
   like a fetched one; one that fails is refused, never stored (ADR 0006);
3. ``store.commit`` (crash-safe; schema validation included);
4. serve it (``ServedState.committed`` → ``uds.publish``);
5. run the group's exec hook, if any (recorded like an SDK ack);
6. report it. A release refused at any step is reported with its reason and
   the previous one keeps being served. The offer is retried with growing
   delays (a failed blob fetch may heal); a repeated refusal is reported once.

Before that, the answer's freshness statement is verified (timestamp role);
it extends how long the served config counts as fresh, so a release arrives
already fresh. After the releases, a good statement is persisted
(``<data>/trust/freshness.bundle``, at most every :data:`PERSIST_EVERY`
seconds) atomically but without fsync: it only lets a restart without
network count as fresh for a while, and the Center hands out a new one with
every answer, so it never delays a release.

Invariants:

* Center trouble (unreachable, HTTP errors, garbage) never stops serving: the
  loop backs off with jitter (exponential, capped at ``backoff_max``) and
  retries, saying so once per outage (:mod:`konorkestra.agent.outage`: one
  WARNING when it starts, one INFO when it ends, no traceback); a Center that
  keeps answering long-polls early with nothing new is polled every
  ``fallback_poll`` seconds instead (an early answer followed by a failure is a
  Center that stopped, not one that answers early).
* The long-poll asks to be held at most ``poll_wait`` seconds and never longer
  than half of what is left of the freshness statement, so the next statement
  arrives before the current one expires.
* Store and signature work runs in worker threads; the event loop only
  coordinates.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from konorkestra.agent.config import AgentConfig
from konorkestra.agent.hooks import record, run_hook
from konorkestra.agent.outage import Outage
from konorkestra.agent.reporting import BatchRefused, Reporter
from konorkestra.agent.served import ServedState, utcnow
from konorkestra.agent.store import (
    AgentStore,
    CommittedRelease,
    StagedRelease,
    StoreBrokenError,
    StoreError,
)
from konorkestra.agent.store.fsutil import ensure_dir
from konorkestra.agent.visibility import Visibility
from konorkestra.durable import atomic_write
from konorkestra.model.canonical import is_digest
from konorkestra.model.types import Digest
from konorkestra.trust import (
    FreshnessStatus,
    GroupState,
    HighWaterMark,
    Limits,
    TrustError,
    TrustRoot,
    VerifiedRelease,
    Verifier,
)

log = logging.getLogger(__name__)
MAX_ANSWER = 32 * 1024 * 1024
FRESHNESS_FILE = Path("trust") / "freshness.bundle"
PERSIST_EVERY = 30.0
"""Seconds between two writes of the kept freshness statement (one per answer at most)."""
DEFAULT_LIMITS = Limits()


REFUSED = frozenset({400, 403, 413, 422})
"""Report statuses that say "this content, never": the batch is dropped, not resent."""


class CenterError(Exception):
    """Talking to the Center failed (transport, HTTP status, or a malformed answer)."""


@dataclass(frozen=True)
class Node:
    """Who this agent is, as the sync loop needs it."""

    node_id: str
    groups: tuple[str, ...]
    trust_root: bytes


@dataclass(frozen=True)
class Offer:
    """One Release offered by the Center (unverified until the Verifier says so)."""

    group: str
    sequence: int
    release_id: str
    bundle: bytes
    blobs: Mapping[str, bytes] = field(default_factory=dict)
    """Blobs the Center inlined, by digest: untrusted until checked like fetched ones."""


@dataclass(frozen=True)
class Desired:
    """One answer of ``GET /v1/agent/desired``."""

    offers: tuple[Offer, ...]
    freshness: bytes
    held: float


def parse_desired(raw: object) -> Desired:
    """Check the shape of a desired-state answer (contents are verified later)."""
    try:
        assert isinstance(raw, dict)
        offers = []
        for item in raw["releases"]:
            inline = item.get("blobs") or {}
            assert isinstance(inline, dict)
            blobs = {str(d): base64.b64decode(v, validate=True) for d, v in inline.items()}
            offers.append(
                Offer(str(item["group"]), int(item["sequence"]), str(item["id"]),
                      base64.b64decode(item["bundle"], validate=True), blobs)
            )  # fmt: skip
        freshness = base64.b64decode(raw["freshness"], validate=True)
        held = float(raw.get("wait", 0.0))
    except (AssertionError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise CenterError(f"malformed desired-state answer: {exc!r}") from None
    return Desired(tuple(offers), freshness, held)


ClientFactory = Callable[[], httpx.AsyncClient]


class CenterClient:
    """The agent API over one keep-alive HTTP client (mTLS in production)."""

    def __init__(self, factory: ClientFactory) -> None:
        self.factory = factory
        self.http = factory()
        self._old: list[httpx.AsyncClient] = []

    async def renew(self, factory: ClientFactory) -> None:
        """Use new credentials from the next request on; in-flight requests finish.

        The client retired by the previous renewal is closed now: it has had a
        whole certificate period to finish its requests.
        """
        for old in self._old:
            await old.aclose()
        self._old = [self.http]
        self.factory = factory
        self.http = factory()

    async def close(self) -> None:
        for c in [*self._old, self.http]:
            await c.aclose()

    async def _get(self, path: str, *, params: Mapping[str, str] | None = None,
                   timeout: float = 30.0, cap: int = MAX_ANSWER) -> bytes:  # fmt: skip
        try:
            async with self.http.stream("GET", path, params=params, timeout=timeout) as resp:
                data = bytearray()
                async for chunk in resp.aiter_bytes():
                    data += chunk
                    if len(data) > cap:
                        raise CenterError(f"GET {path}: answer larger than {cap} bytes")
                if resp.status_code != 200:
                    raise CenterError(f"GET {path}: {resp.status_code} {_message(bytes(data))}")
                return bytes(data)
        except httpx.HTTPError as exc:
            raise CenterError(f"GET {path}: {type(exc).__name__}: {exc}") from exc

    async def desired(self, have: Mapping[str, int], wait: float) -> Desired:
        params = {"have": ",".join(f"{g}:{s}" for g, s in sorted(have.items())),
                  "wait": f"{wait:.1f}"}  # fmt: skip
        raw = await self._get("/v1/agent/desired", params=params, timeout=wait + 15.0)
        try:
            return parse_desired(json.loads(raw))
        except ValueError as exc:
            raise CenterError(f"desired-state answer is not JSON: {exc}") from None

    async def blob(self, digest: str, max_bytes: int) -> bytes:
        if not is_digest(digest):
            raise CenterError(f"refusing to fetch a malformed digest {digest[:80]!r}")
        return await self._get(f"/v1/agent/blobs/{digest}", cap=max_bytes)

    async def report(self, body: Mapping[str, Any]) -> None:
        try:
            resp = await self.http.post("/v1/agent/reports", json=dict(body), timeout=30.0)
        except httpx.HTTPError as exc:
            raise CenterError(f"POST reports: {type(exc).__name__}: {exc}") from exc
        if resp.status_code in REFUSED:
            raise BatchRefused(f"{resp.status_code} {_message(resp.content)}")
        if resp.status_code != 200:
            raise CenterError(f"POST reports: {resp.status_code} {_message(resp.content)}")


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


class Refused(Exception):
    """A release was refused; ``code`` says by which rule."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass
class SyncStats:
    """What ``konorkestra agent status`` shows about the loop."""

    last_sync: float | None = None
    last_error: str | None = None
    failures: int = 0
    commits: int = 0
    refusals: int = 0
    repairs: int = 0
    mode: str = "long-poll"
    refused: dict[str, dict[str, Any]] = field(default_factory=dict)


class Syncer:
    """Drives one node's sync with the Center; see the module docstring."""

    def __init__(
        self,
        node: Node,
        store: AgentStore,
        client: CenterClient,
        served: ServedState,
        reporter: Reporter,
        *,
        config: AgentConfig,
        visibility: Visibility,
        data_dir: Path,
        clock: Callable[[], dt.datetime] = utcnow,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.node, self.store, self.client = node, store, client
        self.served, self.reporter, self.config = served, reporter, config
        self.visibility, self.data_dir, self.clock, self.limits = (
            visibility,
            data_dir,
            clock,
            limits,
        )
        self.root = TrustRoot.from_bytes(node.trust_root)
        self.skew = dt.timedelta(seconds=config.clock_skew)
        self.last_freshness: dt.datetime | None = None
        self.persisted_at = -PERSIST_EVERY
        self.expires: dt.datetime | None = None
        self.stats = SyncStats()
        self.hook_tasks: set[asyncio.Task[None]] = set()
        self.on_store_broken: Callable[[], AgentStore] | None = None

    # -- verifier inputs -----------------------------------------------------------

    def marks(self) -> dict[str, HighWaterMark]:
        out = {}
        for group in self.node.groups:
            mark = self.store.high_water(group)
            if mark is not None:
                out[group] = HighWaterMark(mark[0], mark[1])
        return out

    def verifier(self) -> Verifier:
        return Verifier(
            self.root, self.marks(), self.clock(), scope=self.node.groups, node=self.node.node_id,
            clock_skew=self.skew, limits=self.limits, last_freshness=self.last_freshness,
        )  # fmt: skip

    def have(self) -> dict[str, int]:
        out = {}
        for group in self.node.groups:
            mark = self.store.high_water(group)
            out[group] = mark[0] if mark else 0
        return out

    # -- freshness -------------------------------------------------------------------

    def load_freshness(self) -> None:
        """Re-verify the persisted freshness statement (restart without network). Loop only."""
        path = self.data_dir / FRESHNESS_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return
        try:
            self.adopt(self.verifier().check_freshness(raw))
        except TrustError as exc:
            log.warning("persisted freshness statement not accepted: %s", exc)

    def persist_freshness(self, raw: bytes) -> None:
        """Keep the statement for a restart; atomic, not durable (it is re-obtainable)."""
        ensure_dir(self.data_dir / "trust")
        atomic_write(self.data_dir / FRESHNESS_FILE, raw, 0o644, durable=False)

    def adopt(self, status: FreshnessStatus) -> None:
        """Take a verified freshness status into account. Loop only."""
        self.last_freshness = status.statement.issued_at
        self.expires = status.statement.expires_at
        behind = [g for g, s in status.groups.items() if s is GroupState.BEHIND]
        if behind:
            log.info("the Center has news this node does not hold yet: %s", ", ".join(behind))
        if not status.stale:
            self.served.fresh_until(status.statement.expires_at + self.skew)

    def poll_wait(self) -> float:
        wait = self.config.poll_wait
        if self.expires is not None:
            left = (self.expires - self.clock()).total_seconds()
            wait = min(wait, max(1.0, left / 2))
        return wait

    # -- one answer ----------------------------------------------------------------------

    async def handle(self, answer: Desired) -> int:
        """Apply an answer; returns how many releases were committed."""
        fresh = False
        try:
            status = await asyncio.to_thread(self.verifier().check_freshness, answer.freshness)
            self.adopt(status)
            fresh = True
        except TrustError as exc:
            msg = f"freshness statement refused ({type(exc).__name__}): {exc}"
            log.error("%s", msg)
            self.reporter.error("freshness", msg)
        committed = 0
        for offer in sorted(answer.offers, key=lambda o: (o.group, o.sequence)):
            try:
                rel = await self.apply(offer)
            except Refused as exc:
                self.refuse(offer, exc.code, exc.reason)
                continue
            if rel is not None:
                committed += 1
        if fresh and time.monotonic() - self.persisted_at >= PERSIST_EVERY:
            try:
                await asyncio.to_thread(self.persist_freshness, answer.freshness)
                self.persisted_at = time.monotonic()
            except OSError as exc:
                log.warning("cannot keep the freshness statement: %s", exc)
        if self.store.needs_repair:
            await self.repair()
        return committed

    def refuse(self, offer: Offer, code: str, reason: str) -> None:
        """Log and count a refusal; report it unless it repeats the group's last one."""
        self.stats.refusals += 1
        last = self.stats.refused.get(offer.group)
        if last is not None and (last["release"], last["code"]) == (offer.release_id, code):
            return
        log.error("refused %s (%s #%d): %s: %s", offer.release_id, offer.group, offer.sequence,
                  code, reason)  # fmt: skip
        self.stats.refused[offer.group] = {"release": offer.release_id, "code": code,
                                           "reason": reason}  # fmt: skip
        self.reporter.refused(offer.group, offer.release_id, offer.sequence, code, reason)

    async def apply(self, offer: Offer) -> CommittedRelease | None:
        """Verify, fetch, commit and publish one offer; :class:`Refused` when refused."""
        try:
            verified, missing = await asyncio.to_thread(self._verify, offer.bundle)
        except TrustError as exc:
            raise Refused(type(exc).__name__, str(exc)) from None
        st = verified.statement
        if verified.redelivery:
            return None
        blobs = await self.fetch(verified, offer.blobs, missing)
        staged = StagedRelease.of(verified.release, offer.bundle, blobs)
        try:
            rel = await asyncio.to_thread(self.store.commit, staged)
        except StoreBrokenError as exc:
            self.reporter.error("store", exc.diagnostics())
            if self.on_store_broken is not None:
                self.store = await asyncio.to_thread(self.on_store_broken)
            raise Refused("StoreBroken", exc.message) from None
        except StoreError as exc:
            raise Refused(type(exc).__name__, exc.message) from None
        self.stats.commits += 1
        self.stats.refused.pop(st.group, None)
        log.info("committed %s", rel.release_id)
        self.served.committed(rel)
        self.reporter.applied(rel.group, rel.release_id, rel.sequence, rel.digest)
        hook = self.config.hooks.get(rel.group)
        if hook is not None:
            task = asyncio.create_task(self._hook(hook, rel))
            self.hook_tasks.add(task)
            task.add_done_callback(self.hook_tasks.discard)
        return rel

    def _verify(self, bundle: bytes) -> tuple[VerifiedRelease, list[Digest]]:
        """Verify a bundle and list the ConfigSet blobs the store lacks (one worker hop)."""
        verified = self.verifier().verify_release(bundle)
        if verified.redelivery:
            return verified, []
        return verified, self.store.missing_blobs(verified.statement.configsets)

    async def fetch(
        self,
        verified: VerifiedRelease,
        inline: Mapping[str, bytes] | None = None,
        missing: list[Digest] | None = None,
    ) -> dict[Digest, bytes]:
        """The blobs the store lacks: ConfigSet blobs (signed size and digest), then files.

        Each comes from ``inline`` when the Center sent it there, else from the blob
        route; either way it is checked the same (and only needed blobs are kept).
        """
        refs = verified.statement.configsets
        sizes = {cs.digest: cs.size for cs in refs if cs.size is not None}
        inline = inline or {}
        fetched: dict[Digest, bytes] = {}
        if missing is None:
            missing = await asyncio.to_thread(self.store.missing_blobs, refs)
        for step in (1, 2):
            for digest in missing:
                cap = sizes.get(digest, self.limits.max_blob_bytes)
                data = inline.get(digest)
                if data is not None and len(data) > cap:
                    raise Refused(
                        "BlobTooLarge", f"inlined blob {digest[:23]}… is over {cap} bytes"
                    )
                try:
                    if data is None:
                        data = await self.client.blob(digest, cap)
                except CenterError as exc:
                    raise Refused("BlobUnavailable", str(exc)) from None
                if step == 1:
                    try:
                        verified.check_blob(digest, data)
                    except TrustError as exc:
                        raise Refused(type(exc).__name__, str(exc)) from None
                fetched[Digest(digest)] = data
            if step == 1:
                try:
                    missing = await asyncio.to_thread(self.store.missing_blobs, refs, fetched)
                except StoreError as exc:
                    raise Refused(type(exc).__name__, exc.message) from None
        return fetched

    async def _hook(self, hook: Any, rel: CommittedRelease) -> None:
        result = await run_hook(hook, rel)
        log.info("hook for %s: %s%s", rel.release_id, result.status,
                 f" ({result.error})" if result.error else "")  # fmt: skip
        record(self.visibility, result)
        self.reporter.wake()

    async def repair(self) -> None:
        left = await asyncio.to_thread(self.store.repair)
        if not left:
            self.stats.repairs += 1
            log.info("store repaired from the Center")

    # -- the loop --------------------------------------------------------------------------

    def fetch_blob_blocking(self, loop: asyncio.AbstractEventLoop) -> Callable[[Digest], bytes]:
        """A ``fetch_blob`` for the store (called from worker threads, never the loop)."""

        def fetch(digest: Digest) -> bytes:
            fut = asyncio.run_coroutine_threadsafe(
                self.client.blob(digest, self.limits.max_blob_bytes), loop
            )
            return fut.result(timeout=60)

        return fetch

    async def run(self) -> None:
        """Long-poll forever (until cancelled); see the module invariants."""
        outage = Outage()
        shorts = 0
        refusing = 0
        while True:
            wait = self.poll_wait()
            have = await asyncio.to_thread(self.have)
            started = time.monotonic()
            try:
                answer = await self.client.desired(have, wait)
            except CenterError as exc:
                delay = min(self.config.backoff_max, 0.5 * 2 ** min(outage.failures + 1, 16))
                delay *= random.uniform(0.5, 1.0)
                level, line = outage.failed(str(exc), delay, now=time.monotonic())
                log.log(level, "%s", line)  # once per outage: a stopping Center is routine
                self.stats.failures = outage.failures
                self.stats.last_error = str(exc)
                shorts = 0  # an early answer followed by a failure: the Center went away
                await asyncio.sleep(delay)
                continue
            if back := outage.recovered(now=time.monotonic()):
                log.info("%s", back)
            log.debug("the Center answered: %d release(s), held %.1fs",
                      len(answer.offers), answer.held)  # fmt: skip
            self.stats.failures = 0
            self.stats.last_error = None
            self.stats.last_sync = time.time()
            committed = await self.handle(answer)
            took = time.monotonic() - started
            if answer.offers and not committed:
                # Refused (or a blob failed): retry, but never spin on a misbehaving Center.
                refusing += 1
                delay = min(self.config.fallback_poll, 2.0 ** min(refusing, 16))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            else:
                refusing = 0
            if not answer.offers and wait >= 4 and took < wait / 2:
                shorts += 1
            else:
                shorts = 0
            self.stats.mode = "fallback-poll" if shorts >= 3 else "long-poll"
            if shorts >= 3:
                await asyncio.sleep(self.config.fallback_poll * random.uniform(0.9, 1.1))
