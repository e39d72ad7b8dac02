"""The Agent's local store: verified releases, committed crash-safely.

Example::

    >>> import tempfile
    >>> from konorkestra.model.canonical import canonical_bytes, digest_of
    >>> cs = canonical_bytes({"apiVersion": "konorkestra.io/v1", "kind": "ConfigSet",
    ...     "metadata": {"name": "api", "version": 1}, "spec": {"data": {"port": 80}}})
    >>> bundle = b'{"signed": "bundle"}'
    >>> store = AgentStore.open(tempfile.mkdtemp())
    >>> refs = [("api", 1, digest_of(cs))]
    >>> store.missing_blobs(refs) == [digest_of(cs)]
    True
    >>> rel = store.commit(StagedRelease("checkout", 1, "checkout-1", digest_of(bundle),
    ...     bundle, tuple(refs), {digest_of(cs): cs}))
    >>> store.current("checkout").config
    {'api': {'port': 80}}
    >>> store.missing_blobs(refs)
    []
    >>> store.close()

API
---

``AgentStore.open(data_dir, *, keep=5, log_max_bytes=1 MiB, fetch_blob=None, fs=None)``
    Open or create the store and run recovery. ``fetch_blob(digest) -> bytes``
    re-fetches a blob (repair, or a blob ``commit`` was not given); ``fs`` is
    the :class:`Fs` seam (tests inject faults through it).
``store.missing_blobs(configsets, fetched=None) -> list[Digest]``
    Two-step fetch plan: with ConfigSet refs ``(name, version, digest)`` it
    returns the ConfigSet blobs not held; called again with the blobs fetched
    so far it parses them and returns their file blobs not held. Empty: done.
``store.commit(staged, validate=validate_schemas) -> CommittedRelease``
    Commit a :class:`StagedRelease` (already signature-verified). Its
    ``configsets`` may be ``(name, version, digest)`` tuples or
    :class:`konorkestra.model.release.ConfigSetRef` objects; ``release_digest``
    should be ``VerifiedRelease.statement_digest`` so the marks agree with the
    verifier: ``StagedRelease.of(verified.release, bundle, blobs)`` does both.
    ``validate`` gets a :class:`ReleaseView` and raises to refuse; ``None``
    skips it.
``store.timings`` holds the phases of the last commit in seconds (``bench/apply.py``).
``store.current(group)``, ``store.groups()``, ``store.high_water(group)``,
``store.history(group)`` (kept releases, newest first), ``store.repair()``,
``store.close()``; ``AgentStore`` is also a context manager. One store per
data directory: ``open`` takes ``<data>/lock`` (``flock``) and raises
:class:`StoreLockedError` while another holds it.

Errors: :class:`UntrustedDataError` subclasses refuse a release and change
nothing served; :class:`StoreBrokenError` means an I/O error interrupted a
commit: reopen the store. :class:`ReleaseUnavailableError` from ``current``
means the group's release is damaged beyond local repair.

Layout (``docs/adr/0004-agent-store-layout.md``)::

    <data>/blobs/sha256/<ab>/<hex>           content-addressed blobs, 0444
    <data>/log/<n>.log, log/snapshot.json    transaction log segments, snapshot
    <data>/releases/<group>/<sequence>/      release.json, config/, files/, manifest.json
    <data>/current/<group>                   symlink -> ../releases/<group>/<sequence>
    <data>/trust/high_water.json             per-group (sequence, digest), a mirror of the log

Rules
-----

1. **Verify before write.** Nothing is written until every ConfigSet blob
   matches its digest and names its ``name@version``, every file blob matches
   its digest *and* its declared size, and every name, digest and path is
   safe; a failure raises and leaves the disk untouched. (Signatures were
   checked by ``konorkestra.trust`` before; ``release_digest`` is the
   verifier's statement digest, the bundle is stored under its own digest.)
2. **Content addressing.** A blob is stored once, under its digest, with an
   atomic durable write; a held blob that verifies is never fetched or
   written again.
3. **Two-step fetch.** ``missing_blobs`` asks for ConfigSet blobs first, then
   for the file blobs they name; when it returns nothing, ``commit`` needs no
   network.
4. **Monotonic sequences.** A sequence at or below the group's high-water
   mark is refused unless it is the mark itself with the same digest, which is
   a no-op returning the current release — or, when the store no longer
   serves the group (its directories were emptied while ``trust/`` was kept),
   is committed again: the mark does not move, and nothing older is taken.
5. **Commit order.** Validate → blobs, STAGED record and release directory
   written and fsynced together (round trip 1) → blobs and directory renamed
   into place, their directories fsynced (round trip 2) → pointer flipped
   (symlink, rename) and COMMITTED appended, ``current/`` and the log synced
   together (round trip 3) → high-water mirror file, GC. The flip is the
   commit point; a durable COMMITTED without a durable flip is finished by
   recovery (rule 9), so the two share a round trip. The high-water marks
   live in the log (COMMITTED records, snapshot); ``trust/high_water.json``
   mirrors them without an fsync of its own and recovery rewrites it
   (``docs/adr/0005-one-round-trip-per-step.md``).
6. **Refusal changes nothing.** The validator runs before anything is
   written: one that raises leaves the disk, the log, the pointer, the mark
   and ``current`` as they were.
7. **The pointer is atomic.** ``current/<group>`` always exists once set and
   names the old release or the new one; readers never see it missing.
8. **release.json is the served release.** ``current/<group>/release.json``
   holds exactly group, release, sequence, digest, committed_at and config,
   in the docs/reference/protocol.md fallback format, and equals ``current(group)``.
9. **Recovery.** Opening replays the snapshot and log, truncates a torn tail,
   finishes a STAGED-but-not-COMMITTED release the pointer already names
   (COMMITTED + mark) and rolls back any other (directory deleted, ABORTED);
   a pointer behind a durable COMMITTED is moved forward to it.
   A pointer never names a release whose blobs were incomplete or whose STAGED
   record was not durable; each group ends at its old or its new release,
   never below its high-water mark.
10. **Repair.** Opening verifies every blob and generated file of each current
    release; bad blobs are re-fetched through ``fetch_blob``, bad files are
    rebuilt from verified blobs. A release that still misses blobs is served
    with ``needs_repair``; one whose directory cannot be rebuilt makes
    ``current`` raise :class:`ReleaseUnavailableError`.
11. **Garbage collection.** Each group keeps its newest ``keep`` releases
    (directories and every blob they reference) so a rollback release needs
    no network; older releases and unreferenced blobs are deleted.
12. **Compaction.** Once the active log segment passes ``log_max_bytes`` the
    state is written to ``log/snapshot.json`` atomically and a new segment
    starts; older segments are deleted only after that.
13. **I/O errors stop the store.** An ``OSError`` during a commit (fsync
    included) is never retried: the store refuses further commits until it
    is reopened and recovered.
"""

from konorkestra.agent.store.errors import (
    BlobIntegrityError,
    BlobMissingError,
    InvalidReleaseError,
    LocalDamageError,
    ReleaseUnavailableError,
    RollbackRefusedError,
    StoreBrokenError,
    StoreError,
    StoreLockedError,
    UntrustedDataError,
    ValidationRefusedError,
)
from konorkestra.agent.store.fsutil import Fs
from konorkestra.agent.store.records import (
    CommittedRelease,
    ConfigSetDoc,
    FileRef,
    ReleaseView,
    StagedRelease,
)
from konorkestra.agent.store.store import AgentStore
from konorkestra.agent.store.validate import Validator, validate_schemas

__all__ = [
    "AgentStore",
    "BlobIntegrityError",
    "BlobMissingError",
    "CommittedRelease",
    "ConfigSetDoc",
    "FileRef",
    "Fs",
    "InvalidReleaseError",
    "LocalDamageError",
    "ReleaseUnavailableError",
    "ReleaseView",
    "RollbackRefusedError",
    "StagedRelease",
    "StoreBrokenError",
    "StoreError",
    "StoreLockedError",
    "UntrustedDataError",
    "ValidationRefusedError",
    "Validator",
    "validate_schemas",
]
