"""What the dashboard's Release pages show, read from the store in a fixed number of queries.

Example::

    page = load_release(engine, "checkout-2-0a1b2c3d4e5f6a7b", node_page=1)
    page.release.configsets, page.keyids, page.origin       # what was signed, by whom, why
    page.diff.configsets if page.diff else ()               # the same diff as konorctl diff
    [v.node for v in page.nodes.items]                      # one page of per-node verdicts
    load_releases(engine, group="checkout", page=1)         # newest first, paginated

Invariants:

1. A fixed number of queries per page, whatever the number of nodes or
   Releases: the Release row and its predecessor, the blobs of both sides (one
   ``IN``), the source commit, the ``release.created`` audit event, and the
   convergence read (:func:`~konorkestra.center.releases.convergence_store.release_nodes`,
   itself a fixed number). Never a query per node or per ConfigSet.
2. The diff against the previous Release is
   :func:`konorkestra.repo.releasediff.diff_releases` -- what ``konorctl diff A B``
   computes -- over ConfigSets rebuilt from the Center's own blobs, each checked
   against the digest the Release names. A blob the store lacks or that does not
   match gives no diff and a one-line reason (:attr:`ReleasePage.diff_note`),
   never a wrong diff or an error page.
3. Signer key ids are read from the signed bundle itself (its DSSE signatures,
   in signing order), not from what anyone said about it.
4. The origin is the ``release.created`` audit event's: ``commit`` (ingest),
   ``manual`` or ``rollback``; ``unknown`` if the event cannot be found.
5. Per-node verdicts are ordered trouble first (refused, failed, stale, behind,
   then the rest), then by node id, and shown :data:`NODES_PER_PAGE` at a time.
6. A page number below 1 or past the end is the caller's 400/empty page: the
   loaders never clamp silently (``pages`` says how many there are).
7. With a :class:`ConvergenceCache` (the pages use :func:`cache_of`), a Release's
   convergence and verdicts are reused while the store has no new audit event
   and no new agent report (:func:`konorkestra.center.rollouts.control.marks`,
   read before the convergence): what they count changes only with a report, a
   node enrolled or revoked, a rollout's step or a new Release, each audited.
   When they did change, the store's
   :class:`~konorkestra.center.releases.convergence_store.ConvergenceMemories`
   (:func:`memories_of`) read only the report rows stored since, with a result
   equal to :func:`~konorkestra.center.releases.convergence_store.release_nodes`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.ingest.queries import CommitRecord, commit_from_row
from konorkestra.center.releases.convergence import Convergence, NodeVerdict
from konorkestra.center.releases.convergence_store import (
    ConvergenceMemories,
    Counted,
    release_nodes,
)
from konorkestra.center.releases.rows import RELEASE_COLUMNS, release_from_row
from konorkestra.center.rollouts.control import MarkedCache, marks, shared
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.model.definitions import ConfigSet, FileEntry
from konorkestra.model.release import ConfigSetRef, Release
from konorkestra.model.types import ConfigSetName, Digest
from konorkestra.repo.releasediff import ReleaseDiff, diff_releases
from konorkestra.trust.dsse import decode_bundle
from konorkestra.trust.errors import TrustError

R, B, C, A = schema.releases, schema.blobs, schema.commits, schema.audit
NODES_PER_PAGE = 200
"""Per-node rows on one Release page (a 1,000-node Group is five pages)."""
RELEASES_PER_PAGE = 50
"""Rows of the Release list."""
BUNDLE_LIMIT = 1 << 22
"""The largest bundle decoded for its key ids (the Center signs far smaller ones)."""
ORIGINS = {"ingest": "commit", "manual": "manual", "rollback": "rollback"}
"""The audit event's ``origin`` as the page names it (rule 4)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Paged(Generic[T]):
    """One page of a longer list: its items, its number (from 1) and how many pages exist."""

    items: tuple[T, ...]
    page: int
    pages: int
    total: int
    size: int

    @property
    def first(self) -> int:
        """The 1-based position of the first item shown (0 when there is none)."""
        return (self.page - 1) * self.size + 1 if self.items else 0


def paginate(items: Sequence[T], page: int, size: int) -> Paged[T]:
    """Page ``page`` (from 1) of ``items``; an empty list still has one (empty) page."""
    pages = max(1, -(-len(items) // size))
    start = (page - 1) * size
    return Paged(tuple(items[start : start + size]), page, pages, len(items), size)


def trouble_first(verdicts: Iterable[NodeVerdict]) -> list[NodeVerdict]:
    """Rule 5: refused, failed, stale, behind, then the rest; by node id within each."""

    def rank(v: NodeVerdict) -> int:
        if v.refused:
            return 0
        if v.failed:
            return 1
        if v.stale:
            return 2
        if v.targeted and not v.committed:
            return 3
        return 4

    return sorted(verdicts, key=lambda v: (rank(v), v.node))


ConvergenceCache = MarkedCache[str, Counted]
"""Rule 7: convergence and verdicts by Release id while the store's marks hold."""


def cache_of(engine: Engine) -> ConvergenceCache:
    """The dashboard's convergence cache for ``engine``'s store (rule 7)."""
    return shared(engine, "release-convergence", lambda: ConvergenceCache(32))


def memories_of(engine: Engine) -> ConvergenceMemories:
    """The dashboard's convergence memories for ``engine``'s store (rule 7)."""
    return shared(engine, "convergence-memories", ConvergenceMemories)


def counted(engine: Engine, release: Release, cache: ConvergenceCache | None) -> Counted:
    """``release``'s convergence and verdicts, from ``cache`` while it holds, else from
    the store's convergence memories (rule 7)."""
    if cache is None:
        return release_nodes(engine, release)
    with reader(engine).connect() as conn:
        at = marks(conn)
    found = cache.get(at, release.id)
    if found is None:
        found = memories_of(engine).release_nodes(engine, release)
        cache.put(at, release.id, found)
    return found


@dataclass(frozen=True)
class ReleasePage:
    """Everything ``/ui/releases/{id}`` shows."""

    release: Release
    origin: str
    keyids: tuple[str, ...]
    commit: CommitRecord | None
    previous: Release | None
    diff: ReleaseDiff | None
    diff_note: str
    convergence: Convergence
    nodes: Paged[NodeVerdict]


def configset_of(ref: ConfigSetRef, blob: bytes | None) -> ConfigSet | None:
    """Rule 2: the ConfigSet the Center's blob holds, if it is the one ``ref`` names."""
    if blob is None:
        return None
    try:
        spec = json.loads(blob)["spec"]
        files = {p: FileEntry(Digest(f["digest"]), int(f["size"])) for p, f in
                 spec.get("files", {}).items()}  # fmt: skip
        built = ConfigSet(ConfigSetName(ref.name), ref.version, spec["data"], spec.get("schema"),
                          files)  # fmt: skip
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return built if built.digest() == ref.digest else None


def release_diff(
    previous: Release | None, release: Release, blobs: Mapping[str, bytes]
) -> tuple[ReleaseDiff | None, str]:
    """Rule 2: the diff of ``previous`` → ``release`` and a note when there is none."""
    if previous is None:
        return None, "the first Release of its Group: nothing to compare with"
    contents: dict[Digest, ConfigSet] = {}
    for ref in (*previous.configsets, *release.configsets):
        built = configset_of(ref, blobs.get(ref.digest))
        if built is None:
            return None, f"the Center's store has no usable blob of {ref.ref}"
        contents[ref.digest] = built
    return diff_releases(previous, release, contents), ""


def keyids_of(bundle: bytes) -> tuple[str, ...]:
    """Rule 3: the key ids that signed ``bundle``, in signing order."""
    try:
        envelope = decode_bundle(bundle, "release bundle", limit=BUNDLE_LIMIT)
    except (TrustError, ValueError):
        return ()
    return tuple(s.keyid for s in envelope.signatures)


def _origin(conn: Connection, release_id: str) -> str:
    details = conn.execute(
        sa.select(A.c.details)
        .where(A.c.action == "release.created", A.c.details["release"].as_string() == release_id)
        .order_by(A.c.seq.desc())
        .limit(1)
    ).scalar()
    origin = details.get("origin") if isinstance(details, dict) else None
    return ORIGINS.get(str(origin), "unknown")


def load_release(
    engine: Engine,
    release_id: str,
    *,
    node_page: int = 1,
    cache: ConvergenceCache | None = None,
) -> ReleasePage | None:
    """The Release page's data, or ``None`` for an unknown id (rule 1: fixed queries)."""
    with reader(engine).connect() as conn:
        row = conn.execute(sa.select(R).where(R.c.id == release_id)).first()
        if row is None:
            return None
        release = release_from_row(row._mapping)
        bundle = bytes(row._mapping["bundle"])
        previous = None
        if release.previous_id is not None:
            prev = conn.execute(
                sa.select(*RELEASE_COLUMNS).where(R.c.id == release.previous_id)
            ).first()
            previous = None if prev is None else release_from_row(prev._mapping)
        digests = {c.digest for c in release.configsets}
        digests |= {c.digest for c in previous.configsets} if previous else set()
        blobs = {
            str(d): bytes(data)
            for d, data in conn.execute(
                sa.select(B.c.digest, B.c.data).where(B.c.digest.in_(digests))
            )
        }
        commit = None
        if release.commit is not None:
            found = conn.execute(sa.select(C).where(C.c.sha == release.commit)).first()
            commit = None if found is None else commit_from_row(found._mapping)
        origin = _origin(conn, release.id)
    diff, note = release_diff(previous, release, blobs)
    convergence, verdicts = counted(engine, release, cache)
    return ReleasePage(
        release=release,
        origin=origin,
        keyids=keyids_of(bundle),
        commit=commit,
        previous=previous,
        diff=diff,
        diff_note=note,
        convergence=convergence,
        nodes=paginate(trouble_first(verdicts), node_page, NODES_PER_PAGE),
    )


def load_convergence(
    engine: Engine, release_id: str, *, node_page: int = 1, cache: ConvergenceCache | None = None
) -> tuple[Release, Convergence, Paged[NodeVerdict]] | None:
    """Only the live part of the page (an htmx refresh): the Release and its convergence."""
    with reader(engine).connect() as conn:
        row = conn.execute(sa.select(*RELEASE_COLUMNS).where(R.c.id == release_id)).first()
    if row is None:
        return None
    release = release_from_row(row._mapping)
    convergence, verdicts = counted(engine, release, cache)
    return release, convergence, paginate(trouble_first(verdicts), node_page, NODES_PER_PAGE)


def load_releases(engine: Engine, *, group: str | None, page: int) -> Paged[Release]:
    """Releases newest first (of ``group`` only, if given), page ``page``: two queries."""
    where = [] if group is None else [R.c.group == group]
    with reader(engine).connect() as conn:
        total = int(
            conn.execute(sa.select(sa.func.count()).select_from(R).where(*where)).scalar() or 0
        )
        rows = conn.execute(
            sa.select(*RELEASE_COLUMNS)
            .where(*where)
            .order_by(R.c.created_at.desc(), R.c.sequence.desc(), R.c.id)
            .limit(RELEASES_PER_PAGE)
            .offset((page - 1) * RELEASES_PER_PAGE)
        ).all()
    pages = max(1, -(-total // RELEASES_PER_PAGE))
    return Paged(
        tuple(release_from_row(r._mapping) for r in rows), page, pages, total, RELEASES_PER_PAGE
    )
