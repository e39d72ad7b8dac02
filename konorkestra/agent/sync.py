"""Syncing with the Center: verify, fetch, commit, publish and report what it offers.

Example::

    client = CenterClient(lambda: httpx.AsyncClient(base_url=url, verify=ident.ssl_context()))
    syncer = Syncer(node, store, client, served, reporter, config=cfg, visibility=vis)
    await syncer.run()                  # until cancelled; never raises for Center trouble

For each Release the Center offers (a stream answer or a long-poll answer), in group order:

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
already fresh. After the releases, a good statement is kept on disk for a
restart without network (:mod:`konorkestra.agent.freshness`, which also
bounds how long a long-poll may be held); keeping it never delays a release.

Invariants:

* How answers arrive (a stream, or long-polls as the fallback), back-off on
  Center trouble and failover between Center URLs are the loop's:
  :mod:`konorkestra.agent.syncloop`.
* Store and signature work runs in worker threads; the event loop only
  coordinates.

The agent API itself (requests, caps, the answer's shape) is
:mod:`konorkestra.agent.centerclient`; this module decides what to do with it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from konorkestra.agent.centerclient import CenterClient, CenterError, Desired, Offer
from konorkestra.agent.config import AgentConfig
from konorkestra.agent.freshness import FreshnessKeeper
from konorkestra.agent.hooks import record, run_hook
from konorkestra.agent.reporting import Reporter
from konorkestra.agent.served import ServedState, utcnow
from konorkestra.agent.store import (
    AgentStore,
    CommittedRelease,
    StagedRelease,
    StoreBrokenError,
    StoreError,
)
from konorkestra.agent.syncloop import follow
from konorkestra.agent.visibility import Visibility
from konorkestra.model.types import Digest
from konorkestra.trust import (
    HighWaterMark,
    Limits,
    TrustError,
    TrustRoot,
    VerifiedRelease,
    Verifier,
)

log = logging.getLogger(__name__)
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Node:
    """Who this agent is, as the sync loop needs it."""

    node_id: str
    groups: tuple[str, ...]
    trust_root: bytes


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
        self.fresh = FreshnessKeeper(
            served, data_dir, skew=self.skew, poll_wait=config.poll_wait, clock=clock
        )
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
            clock_skew=self.skew, limits=self.limits, last_freshness=self.fresh.last_issued,
        )  # fmt: skip

    def have(self) -> dict[str, int]:
        """The sequence the store holds per Group (0: none), as the Center is told.

        Not the high-water marks: a store emptied by hand while ``trust/`` was kept
        would claim Releases it no longer holds and never be offered them again. The
        verifier takes the held-before Release back as an idempotent re-delivery (R8).
        """
        out = {}
        for group in self.node.groups:
            held = self.store.current(group)
            out[group] = int(held.sequence) if held is not None else 0
        return out

    def load_freshness(self) -> None:
        """Re-verify the kept freshness statement (restart without network). Loop only."""
        self.fresh.load(lambda raw: self.verifier().check_freshness(raw))

    # -- one answer ----------------------------------------------------------------------

    async def handle(self, answer: Desired) -> int:
        """Apply an answer; returns how many releases were committed."""
        fresh = False
        try:
            status = await asyncio.to_thread(self.verifier().check_freshness, answer.freshness)
            self.fresh.adopt(status)
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
        if fresh and self.fresh.persist_due():
            try:
                await asyncio.to_thread(self.fresh.persist, answer.freshness)
                self.fresh.persisted()
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
        if verified.redelivery and self._holds(st.group, st.sequence):
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
        st = verified.statement
        if verified.redelivery and self._holds(st.group, st.sequence):
            return verified, []
        return verified, self.store.missing_blobs(st.configsets)

    def _holds(self, group: str, sequence: int) -> bool:
        """Whether the store holds ``group`` at ``sequence`` (a re-delivery it may skip; one
        it lost, an emptied store with ``trust/`` kept, is committed again)."""
        held = self.store.current(group)
        return held is not None and held.sequence == sequence

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

    async def run(self) -> None:
        """Sync forever (until cancelled): :func:`konorkestra.agent.syncloop.follow`."""
        await follow(self)
