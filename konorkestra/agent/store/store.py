"""``AgentStore``: the commit protocol over CAS blobs, log, directories, pointers.

The package docstring (``konorkestra.agent.store``) states the API and the
numbered rules; ``prepare.py`` implements rules 1–3, this module 4–8 and
11–13, ``recovery.py`` 9–10.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from konorkestra.agent.store.blobs import BlobStore
from konorkestra.agent.store.errors import (
    ReleaseUnavailableError,
    RollbackRefusedError,
    StoreBrokenError,
    StoreError,
    StoreLockedError,
    ValidationRefusedError,
)
from konorkestra.agent.store.fsutil import REAL_FS, Batch, Fs, lock_dir
from konorkestra.agent.store.highwater import HighWater, Mark
from konorkestra.agent.store.layout import RELEASE_JSON, Layout
from konorkestra.agent.store.prepare import FetchBlob, Prepared, missing_blobs, prepare
from konorkestra.agent.store.records import (
    CommittedRelease,
    RefLike,
    ReleaseRecord,
    StagedRelease,
)
from konorkestra.agent.store.recovery import recover, verify_current
from konorkestra.agent.store.state import COMMITTED, FORGOTTEN, STAGED, State
from konorkestra.agent.store.txlog import TxLog
from konorkestra.agent.store.validate import Validator, validate_schemas
from konorkestra.model.types import Digest, GroupName


class AgentStore:
    """The agent's crash-safe local store; create it with :meth:`open`."""

    def __init__(
        self, data: Path, keep: int, log_max_bytes: int, fetch_blob: FetchBlob | None, fs: Fs
    ) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.data = data
        self.keep = keep
        self.log_max_bytes = log_max_bytes
        self.fetch_blob = fetch_blob
        self.fs = fs
        self.blobs = BlobStore(data / "blobs", fs)
        self.layout = Layout(data, fs)
        self.log = TxLog(data / "log", fs)
        self.hw = HighWater(data / "trust" / "high_water.json", fs)
        self.state = State()
        self.served: dict[str, CommittedRelease] = {}
        self.unavailable: dict[str, str] = {}
        self.needs_repair: dict[str, set[Digest]] = {}
        self._lock = threading.RLock()
        self._broken: str | None = None
        self._lock_fd: int | None = None
        self._gc_candidates: set[Digest] = set()
        self.timings: dict[str, float] = {}
        """Seconds per phase of the last commit (prepare, validate, stage, place,
        flip, finish): for benchmarks and diagnostics."""

    @classmethod
    def open(
        cls,
        data_dir: str | Path,
        *,
        keep: int = 5,
        log_max_bytes: int = 1 << 20,
        fetch_blob: FetchBlob | None = None,
        fs: Fs | None = None,
    ) -> AgentStore:
        """Open (creating if needed) the store at ``data_dir`` and run recovery."""
        store = cls(Path(data_dir), keep, log_max_bytes, fetch_blob, fs or REAL_FS)
        try:
            store._lock_fd = lock_dir(store.data)
        except BlockingIOError:
            raise StoreLockedError(
                f"{store.data} is in use by another process or store",
                hint="run one agent per data directory; close the other store first",
            ) from None
        try:
            recover(store)
        except OSError as exc:
            store.close()
            raise StoreBrokenError(f"recovery of {data_dir} failed: {exc}") from exc
        except BaseException:
            store.close()
            raise
        return store

    def __enter__(self) -> AgentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------

    def current(self, group: str) -> CommittedRelease | None:
        """The group's committed release, or ``None`` if it never had one."""
        with self._lock:
            if group in self.unavailable:
                raise ReleaseUnavailableError(
                    f"group {group!r}: {self.unavailable[group]}",
                    hint="the next release for this group replaces it; check the disk",
                )
            return self.served.get(group)

    def groups(self) -> list[GroupName]:
        """Groups with a current release (servable or not), sorted."""
        with self._lock:
            names = {g for g, s in self.state.groups.items() if s.current is not None}
            return sorted(GroupName(g) for g in names | set(self.unavailable))

    def high_water(self, group: str) -> Mark | None:
        """The group's durable ``(sequence, digest)`` high-water mark."""
        with self._lock:
            return self.hw.get(group)

    def history(self, group: str) -> list[CommittedRelease]:
        """Kept committed releases of ``group``, newest first."""
        with self._lock:
            g = self.state.groups.get(group)
            if g is None:
                return []
            out = []
            for seq in sorted(g.releases, reverse=True):
                try:
                    out.append(self.load_served(g.releases[seq]))
                except StoreError:
                    continue
            return out

    def load_served(self, rec: ReleaseRecord, needs_repair: bool = False) -> CommittedRelease:
        """Read a release directory's ``release.json`` into a :class:`CommittedRelease`."""
        path = self.layout.release_dir(rec.group, rec.sequence)
        try:
            raw = json.loads((path / RELEASE_JSON).read_bytes())
            config = raw["config"]
        except (OSError, ValueError, KeyError) as exc:
            raise ReleaseUnavailableError(f"{path}/{RELEASE_JSON} is unreadable") from exc
        return CommittedRelease(
            rec.group,
            rec.release_id,
            rec.sequence,
            rec.digest,
            config,
            rec.committed_at,
            path,
            needs_repair,
        )

    def missing_blobs(
        self,
        configsets: Iterable[RefLike],
        fetched: Mapping[Digest, bytes] | None = None,
    ) -> list[Digest]:
        """Blobs still to fetch for a release with these ConfigSets (rule 3).

        Call it once with the ConfigSet refs, fetch what it returns, then call
        it again with ``fetched``: now it parses the ConfigSet blobs and asks
        for their file blobs. An empty list means ``commit`` needs no network.
        """
        with self._lock:
            return missing_blobs(self.blobs, configsets, fetched)

    # -- committing ---------------------------------------------------------

    def commit(
        self, staged: StagedRelease, validate: Validator | None = validate_schemas
    ) -> CommittedRelease:
        """Commit a verified release (rules 1–8); see the package docstring.

        ``validate`` defaults to :func:`validate_schemas`; pass ``None`` to skip.
        Raises an :class:`UntrustedDataError` subclass when the release is
        refused (nothing served changes) and :class:`StoreBrokenError` when an
        I/O error interrupted it (reopen the store; it recovers to old or new).
        """
        with self._lock:
            if self._broken is not None:
                raise StoreBrokenError(
                    f"store is unusable after: {self._broken}",
                    hint="reopen the store to run recovery",
                )
            mark = self.hw.get(staged.group)
            cur = self.served.get(staged.group)
            lost = cur is None  # rule 4: the marked Release itself, no longer served
            if mark is not None and staged.sequence <= mark[0]:
                same = (staged.sequence, staged.release_digest) == mark
                if same and cur is not None and cur.sequence == mark[0]:
                    return cur
                if not (same and lost):
                    raise RollbackRefusedError(
                        f"group {staged.group!r}: sequence {staged.sequence} is at or below "
                        f"the high-water mark {mark[0]}"
                        + ("" if staged.sequence < mark[0] else " with a different digest"),
                        hint="a rollback is a new Release with a higher sequence",
                    )
            try:
                clock = _Clock()
                prepared = prepare(staged, self.blobs, self.fetch_blob)
                clock.lap("prepare")
                return self._apply(prepared, validate, clock)
            except OSError as exc:
                self._broken = f"{type(exc).__name__}: {exc}"
                raise StoreBrokenError(
                    f"commit of {staged.group}@{staged.sequence} interrupted: {exc}",
                    hint="reopen the store; the group is at its old or its new release",
                ) from exc

    def _apply(self, p: Prepared, validate: Validator | None, clock: _Clock) -> CommittedRelease:
        """Validate → write → three fsync round trips → mark, GC (rule 5).

        Round 1 makes the blob files, the STAGED record and the release
        directory (files and subdirectories) durable together; round 2 the
        blob and release renames; round 3 the flip and the COMMITTED record.
        ``self.timings`` keeps the phases of the last commit, in seconds.
        """
        rec = p.record
        if validate is not None:
            try:
                validate(p.view)
            except ValidationRefusedError:
                raise
            except Exception as exc:
                raise ValidationRefusedError(f"release {rec.release_id} refused: {exc}") from exc
        clock.lap("validate")
        with Batch(self.fs) as written:
            moves = self.blobs.stage(p.to_write, written)
            self.append({"type": STAGED, "release": rec.to_json()}, sync=False)
            written.add(self.log.datasync)
            tmp = self.layout.build(rec, p.rendered, p.files, written)
            written.sync()
        clock.lap("stage")
        with Batch(self.fs) as placed:
            self.blobs.publish(moves, placed)
            self.layout.install(rec, tmp, placed)
            placed.sync()
        clock.lap("place")
        with Batch(self.fs) as flipped:
            self.layout.flip(rec.group, rec.sequence, flipped)  # the commit point
            self.append(
                {"type": COMMITTED, "group": rec.group, "sequence": rec.sequence,
                 "digest": rec.digest},
                sync=False,
            )  # fmt: skip
            flipped.add(self.log.datasync)
            flipped.sync()
        clock.lap("flip")
        # A mirror of the marks the log holds durably (rule 5): no fsync of its own.
        self.hw.raise_to({rec.group: (rec.sequence, rec.digest)}, durable=False)
        served = CommittedRelease(
            rec.group,
            rec.release_id,
            rec.sequence,
            rec.digest,
            p.view.config,
            rec.committed_at,
            self.layout.release_dir(rec.group, rec.sequence),
        )
        self.served[rec.group] = served
        self.unavailable.pop(rec.group, None)
        self.needs_repair.pop(rec.group, None)
        self.collect_garbage(rec.group)
        self.maybe_compact()
        clock.lap("finish")
        self.timings = clock.laps
        return served

    def append(self, body: dict[str, object], *, sync: bool = True) -> None:
        """Log a record (durably unless ``sync=False``), then apply it to the state."""
        self.log.append(body, sync=sync)
        self.state.apply(body)

    # -- maintenance ----------------------------------------------------------

    def collect_garbage(self, group: str) -> None:
        """Forget releases beyond the newest ``keep`` and delete unreferenced blobs."""
        g = self.state.group(group)
        drop = sorted(g.releases, reverse=True)[self.keep :]
        drop = [s for s in drop if s != g.current]
        if drop:
            for seq in drop:
                self._gc_candidates.update(g.releases[seq].blob_digests())
            # Not fsynced: losing this record or the removals only means collecting again.
            self.append({"type": FORGOTTEN, "group": group, "sequences": drop}, sync=False)
            for seq in drop:
                self.layout.remove_release(group, seq, durable=False)
        self.collect_blobs()

    def collect_blobs(self, *, full: bool = False) -> None:
        """Delete unreferenced blobs among the candidates (forgotten or refused
        releases' blobs); ``full`` (on open) considers every blob on disk."""
        candidates = self.blobs.all_digests() if full else self._gc_candidates
        if candidates:
            self.blobs.remove(set(candidates) - self.state.referenced_blobs())
            self._gc_candidates.clear()

    def maybe_compact(self) -> None:
        """Snapshot the state and start a new log segment past ``log_max_bytes``."""
        if self.log.size() > self.log_max_bytes:
            self.log.compact(self.state.to_json())

    def repair(self) -> dict[str, set[Digest]]:
        """Retry re-fetching damaged blobs of current releases (rule 10).

        Returns the blobs still needing repair, per group.
        """
        with self._lock:
            for group in sorted(set(self.needs_repair) | set(self.unavailable)):
                g = self.state.groups.get(group)
                if g is not None and self.layout.read_pointer(group) == g.current:
                    verify_current(self, group)
            return {g: set(d) for g, d in self.needs_repair.items()}

    def close(self) -> None:
        """Close the log and release the data directory (idempotent)."""
        self.log.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


class _Clock:
    """Laps of one commit, for ``AgentStore.timings``."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now
