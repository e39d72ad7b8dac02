"""Checking a staged release before anything is written (rules 1–3).

Example::

    >>> import tempfile, pathlib
    >>> from konorkestra.agent.store.blobs import BlobStore
    >>> cas = BlobStore(pathlib.Path(tempfile.mkdtemp()))
    >>> missing_blobs(cas, [("api", 1, "sha256:" + "0" * 64)])
    ['sha256:0000000000000000000000000000000000000000000000000000000000000000']

Invariants:

* :func:`prepare` reads and hashes but never writes: every check of rule 1
  (digests, sizes, names, paths, ConfigSet identity) happens here, so a refused
  release leaves the disk untouched.
* A blob the caller supplied is used only if it matches its digest; a blob not
  supplied is taken from the CAS if it verifies there, else from ``fetch_blob``
  (verified too), else the release is refused with :class:`BlobMissingError`.
* ``Prepared.to_write`` holds exactly the needed blobs the CAS does not hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from konorkestra.agent.store.blobs import BlobStore
from konorkestra.agent.store.errors import BlobIntegrityError, BlobMissingError, InvalidReleaseError
from konorkestra.agent.store.layout import render
from konorkestra.agent.store.records import (
    ConfigSetDoc,
    FileRef,
    RefLike,
    ReleaseRecord,
    ReleaseView,
    StagedRelease,
    as_ref,
    check_digest,
    check_name,
    utc_now,
)
from konorkestra.model.canonical import digest_of
from konorkestra.model.types import Digest

FetchBlob = Callable[[Digest], bytes]


@dataclass(frozen=True)
class Prepared:
    """A checked release, ready to be written."""

    record: ReleaseRecord
    view: ReleaseView
    rendered: dict[str, bytes]
    files: dict[str, bytes]
    to_write: dict[Digest, bytes]


def missing_blobs(
    cas: BlobStore,
    configsets: Iterable[RefLike],
    fetched: Mapping[Digest, bytes] | None = None,
) -> list[Digest]:
    """Blobs still to fetch for a release with these ConfigSets (rule 3).

    Call it once with the ConfigSet refs, fetch what it returns, then call
    it again with ``fetched``: now it parses the ConfigSet blobs and asks
    for their file blobs. An empty list means ``commit`` needs no network.
    """
    fetched = fetched or {}
    missing: list[Digest] = []
    for raw in configsets:
        ref = as_ref(raw)
        check_digest(f"ConfigSet {ref.name}", ref.digest)
        blob = fetched.get(ref.digest) or cas.read_verified(ref.digest)
        if blob is None:
            missing.append(ref.digest)
            continue
        doc = ConfigSetDoc.parse(ref, blob)
        for f in doc.files:
            if f.digest not in fetched and not cas.holds(f.digest):
                missing.append(f.digest)
    return list(dict.fromkeys(missing))


def _blob(
    cas: BlobStore, fetch: FetchBlob | None, digest: Digest, supplied: Mapping[Digest, bytes]
) -> tuple[bytes, bool]:
    """``(bytes, must_write)`` for a needed blob, verified against its digest."""
    check_digest("blob", digest)
    if digest in supplied:
        data = supplied[digest]
        if digest_of(data) != digest:
            raise BlobIntegrityError(f"blob {digest}: content does not match digest")
        return data, not cas.holds(digest)
    held = cas.read_verified(digest)
    if held is not None:
        return held, False
    if fetch is not None:
        try:
            data = fetch(digest)
        except Exception as exc:
            raise BlobMissingError(f"blob {digest}: not supplied, fetch failed") from exc
        if digest_of(data) == digest:
            return data, True
    raise BlobMissingError(f"blob {digest}: not supplied and not held")


def prepare(s: StagedRelease, cas: BlobStore, fetch: FetchBlob | None) -> Prepared:
    """Check every input and blob; write nothing (rule 1)."""
    check_name("group", s.group)
    if not isinstance(s.sequence, int) or s.sequence < 1:
        raise InvalidReleaseError(f"sequence {s.sequence!r} is not a positive integer")
    if not s.configsets or len({c.name for c in s.configsets}) != len(s.configsets):
        raise InvalidReleaseError("a release names each ConfigSet once, and at least one")
    check_digest("release_digest", s.release_digest)
    if not isinstance(s.bundle, bytes) or not s.bundle:
        raise InvalidReleaseError("the signed bundle is missing")
    to_write: dict[Digest, bytes] = {}
    if not cas.holds(s.bundle_digest):
        to_write[s.bundle_digest] = s.bundle
    docs: list[ConfigSetDoc] = []
    files: dict[str, bytes] = {}
    file_refs: dict[str, FileRef] = {}
    for ref in s.configsets:
        check_name("ConfigSet", ref.name)
        check_digest(f"ConfigSet {ref.name}", ref.digest)
        blob, write = _blob(cas, fetch, ref.digest, s.blobs)
        doc = ConfigSetDoc.parse(ref, blob)
        docs.append(doc)
        if write:
            to_write[ref.digest] = blob
        for f in doc.files:
            data, write = _blob(cas, fetch, f.digest, s.blobs)
            if len(data) != f.size:
                raise BlobIntegrityError(f"file {f.path}: {len(data)} bytes, declared {f.size}")
            if file_refs.get(f.path, f).digest != f.digest:
                raise InvalidReleaseError(f"file {f.path} is shipped twice with other content")
            file_refs[f.path], files[f.path] = f, data
            if write:
                to_write[f.digest] = data
    _check_no_nesting(file_refs)
    view = ReleaseView(s.group, s.sequence, s.release_id, s.release_digest, tuple(docs))
    record = ReleaseRecord(
        s.group,
        s.sequence,
        s.release_id,
        s.release_digest,
        s.bundle_digest,
        s.configsets,
        tuple(sorted(file_refs.values())),
        utc_now(),
    )
    rendered = render(record, view.config)
    record = replace(record, layout={k: digest_of(v) for k, v in rendered.items()})
    return Prepared(record, view, rendered, files, to_write)


def _check_no_nesting(files: Mapping[str, FileRef]) -> None:
    for path in files:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise InvalidReleaseError(f"file {path} lies under file {'/'.join(parts[:i])}")
