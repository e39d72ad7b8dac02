"""Recovery on open: replay, settle half-done commits, verify and repair.

Implements rules 9 and 10 of the package docstring. Every step is idempotent,
so a crash during recovery is recovered by the next open. Recovery works on a
:class:`Recoverable`, declared here: the store calls recovery, recovery never
imports the store.

Steps, in order:

1. Create the directory skeleton; sweep ``.tmp-`` debris of interrupted writes.
2. Load the snapshot and replay the log, truncating a torn tail.
3. Settle each group: a pending (STAGED, not COMMITTED) release is finished
   when the pointer already names it (write COMMITTED) and otherwise rolled
   back (delete its directory, write ABORTED). A pointer naming a complete
   release the log no longer knows (lost tail) is adopted from the directory's
   manifest; other release directories are adopted (older than current, with a
   valid manifest) or removed.
4. Raise each group's high-water mark to its current release as the log
   (and the pointer, via step 3) records it; the marks file is only a mirror.
5. Verify every blob and generated file of each current release; re-fetch bad
   blobs via ``fetch_blob`` and rebuild bad files from verified blobs. A
   release whose blobs cannot be repaired is still served (``needs_repair``);
   one whose directory cannot be rebuilt is unavailable (``current`` raises).
6. Garbage-collect and compact as after a commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from konorkestra.agent.store.blobs import BlobStore
from konorkestra.agent.store.errors import StoreError
from konorkestra.agent.store.fsutil import Fs, ensure_dir, remove_tree
from konorkestra.agent.store.highwater import HighWater
from konorkestra.agent.store.layout import Layout, render
from konorkestra.agent.store.prepare import FetchBlob
from konorkestra.agent.store.records import CommittedRelease, ConfigSetDoc, ReleaseRecord
from konorkestra.agent.store.state import ABORTED, ADOPTED, COMMITTED, STAGED, State
from konorkestra.agent.store.txlog import TxLog
from konorkestra.durable import TMP_PREFIX
from konorkestra.model.canonical import digest_of
from konorkestra.model.types import Digest


class Recoverable(Protocol):
    """What recovery works on: :class:`~konorkestra.agent.store.store.AgentStore` is one.

    Recovery reads the parts (``data``, ``fs``, ``log``, ``layout``, ``blobs``,
    ``hw``), replaces ``state`` by the replayed one, fills what is served and
    what is broken, and appends records through ``append``.
    """

    state: State

    @property
    def data(self) -> Path: ...
    @property
    def fs(self) -> Fs: ...
    @property
    def log(self) -> TxLog: ...
    @property
    def layout(self) -> Layout: ...
    @property
    def blobs(self) -> BlobStore: ...
    @property
    def hw(self) -> HighWater: ...
    @property
    def fetch_blob(self) -> FetchBlob | None: ...
    @property
    def served(self) -> dict[str, CommittedRelease]: ...
    @property
    def unavailable(self) -> dict[str, str]: ...
    @property
    def needs_repair(self) -> dict[str, set[Digest]]: ...

    def append(self, body: dict[str, object], *, sync: bool = True) -> None:
        """Append a record to the log and apply it to ``state``."""
        ...

    def load_served(self, rec: ReleaseRecord, needs_repair: bool = False) -> CommittedRelease:
        """The served form of a release whose directory is complete."""
        ...

    def collect_garbage(self, group: str) -> None: ...
    def collect_blobs(self, *, full: bool = False) -> None: ...
    def maybe_compact(self) -> None: ...


def recover(s: Recoverable) -> None:
    """Bring ``s`` to a consistent state (steps 1–6 above)."""
    for d in ("blobs/sha256", "log", "releases", "current", "trust"):
        ensure_dir(s.data / d, s.fs)
    _sweep(s)
    first, next_lsn, snap = s.log.load_snapshot()
    s.state = State.from_json(snap)
    for body in s.log.recover(first, next_lsn):
        s.state.apply(body)
    groups = set(s.state.groups) | set(s.layout.pointer_groups())
    groups |= {p.name for p in s.layout.releases.iterdir() if not p.name.startswith(".")}
    for group in sorted(groups):
        _settle(s, group)
    marks = {}
    for group, g in s.state.groups.items():
        rec = g.current_record()  # committed per the log, even if now unservable
        if rec is not None:
            marks[group] = (int(rec.sequence), str(rec.digest))
    s.hw.raise_to(marks)  # durably: the file mirrors the log (highwater.py)
    for group in sorted(s.state.groups):
        if group not in s.unavailable:
            verify_current(s, group)
        s.collect_garbage(group)
    s.collect_blobs(full=True)  # blobs orphaned by crashes and earlier refusals
    s.maybe_compact()


def _sweep(s: Recoverable) -> None:
    debris = [*s.layout.debris(), *s.blobs.temp_files()]
    debris += [*(s.data / "log").glob(TMP_PREFIX + "*"), *(s.data / "trust").glob(TMP_PREFIX + "*")]
    for p in debris:
        if p.is_dir() and not p.is_symlink():
            remove_tree(p, s.fs)
        else:
            s.fs.unlink(p)
    for parent in sorted({p.parent for p in debris}):
        s.fs.fsync_dir(parent)


def _settle(s: Recoverable, group: str) -> None:
    g = s.state.group(group)
    ptr = s.layout.read_pointer(group)
    p = g.pending
    if p is not None:
        if ptr == p.sequence and s.layout.read_manifest(group, p.sequence) == p:
            s.append(
                {"type": COMMITTED, "group": group, "sequence": p.sequence, "digest": p.digest}
            )
        else:
            if ptr != p.sequence:
                s.layout.remove_release(group, p.sequence)
            s.append({"type": ABORTED, "group": group, "sequence": p.sequence})
    if ptr is not None and ptr != g.current:
        rec = s.layout.read_manifest(group, ptr)
        if rec is not None and (g.current is None or ptr > g.current):
            s.append({"type": STAGED, "release": rec.to_json()})
            s.append({"type": COMMITTED, "group": group, "sequence": ptr, "digest": rec.digest})
        elif (
            g.current is not None
            and ptr < g.current
            and s.layout.read_manifest(group, g.current) is not None
        ):  # an older link was restored from outside: point at the committed release again
            s.layout.flip(group, g.current)
        else:
            s.unavailable[group] = f"current/{group} names release {ptr}, which is incomplete"
    elif ptr is None and g.current is not None:
        if s.layout.read_manifest(group, g.current) is not None:
            s.layout.flip(group, g.current)
        else:
            s.unavailable[group] = f"release {g.current} is committed but its directory is gone"
    for name in s.layout.release_dirs(group):
        if not name.isdigit() or int(name) in g.releases or int(name) == ptr:
            continue
        rec = s.layout.read_manifest(group, int(name))
        if rec is not None and g.current is not None and rec.sequence < g.current:
            s.append({"type": ADOPTED, "release": rec.to_json()})
        else:
            s.layout.remove_release(group, name)


def _try_fetch(s: Recoverable, digest: Digest) -> bytes | None:
    if s.fetch_blob is None:
        return None
    try:
        data = s.fetch_blob(digest)
    except Exception:
        return None
    if digest_of(data) != digest:
        return None
    s.blobs.put_many({digest: data})
    return data


def verify_current(s: Recoverable, group: str) -> None:
    """Verify and repair the group's current release; update what is served."""
    rec = s.state.group(group).current_record()
    if rec is None:
        return
    broken = {d for d in rec.blob_digests() if not s.blobs.holds(d)}
    broken = {d for d in broken if _try_fetch(s, d) is None}
    bad_files = s.layout.damaged(rec)
    if bad_files:
        contents = _rebuild(s, rec, bad_files)
        if contents is None:
            s.unavailable[group] = (
                f"release {rec.sequence} is damaged ({', '.join(bad_files[:3])}) and its "
                "blobs cannot be re-fetched"
            )
            return
        s.layout.rewrite(rec, contents)
    try:
        s.served[group] = s.load_served(rec, needs_repair=bool(broken))
    except StoreError as exc:
        s.unavailable[group] = exc.message
        return
    s.unavailable.pop(group, None)
    if broken:
        s.needs_repair[group] = broken
    else:
        s.needs_repair.pop(group, None)


def _rebuild(s: Recoverable, rec: ReleaseRecord, bad: list[str]) -> dict[str, bytes] | None:
    """Bytes for each damaged generated or raw file, from verified blobs."""
    out: dict[str, bytes] = {}
    rendered: dict[str, bytes] | None = None
    for rel in bad:
        if rel.startswith("files/"):
            fref = next(f for f in rec.files if f"files/{f.path}" == rel)
            data = s.blobs.read_verified(fref.digest)
            if data is None:
                return None
            out[rel] = data
            continue
        if rendered is None:
            config: dict[str, Any] = {}
            for ref in rec.configsets:
                blob = s.blobs.read_verified(ref.digest)
                if blob is None:
                    return None
                config[ref.name] = ConfigSetDoc.parse(ref, blob).data
            rendered = render(rec, config)
        if rel not in rendered or digest_of(rendered[rel]) != rec.layout.get(rel):
            return None
        out[rel] = rendered[rel]
    return out
