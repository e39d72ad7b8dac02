"""The store's vocabulary: staged input, persisted records, committed output.

Example::

    >>> from konorkestra.model.canonical import canonical_bytes, digest_of
    >>> from konorkestra.model.release import ConfigSetRef
    >>> blob = canonical_bytes({"apiVersion": "konorkestra.io/v1", "kind": "ConfigSet",
    ...     "metadata": {"name": "api", "version": 2}, "spec": {"data": {"port": 80}}})
    >>> doc = ConfigSetDoc.parse(ConfigSetRef("api", 2, digest_of(blob)), blob)
    >>> doc.data, doc.files
    ({'port': 80}, ())

Invariants:

* Group and ConfigSet names are DNS labels, so each is a safe single path
  component; file paths are relative POSIX paths without ``.``/``..``/empty
  segments, backslashes or NUL, so ``files/<path>`` never escapes its release.
* A :class:`ConfigSetDoc` exists only for bytes that match their digest and
  whose metadata names the ConfigSet the release asks for.
* A :class:`ReleaseRecord` holds everything needed to re-verify a release:
  every blob digest it references (ConfigSet blobs, file blobs, the bundle).
* ConfigSets are :class:`konorkestra.model.release.ConfigSetRef`; the store
  keeps their name, version and digest (its records hold no size, so every
  ref it holds has ``size=None``), and writes them as ``[name, version, digest]``.
* :meth:`StagedRelease.of` is where a verified model
  :class:`~konorkestra.model.release.Release` enters the store.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from konorkestra.agent.store.errors import BlobIntegrityError, InvalidReleaseError
from konorkestra.model.canonical import digest_of, is_digest
from konorkestra.model.release import ConfigSetRef, Release
from konorkestra.model.types import ConfigSetName, Digest, GroupName, ReleaseId, Sequence

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def check_name(kind: str, name: str) -> None:
    """Refuse a group/ConfigSet name that is not a DNS label."""
    if not isinstance(name, str) or NAME_RE.fullmatch(name) is None:
        raise InvalidReleaseError(f"{kind} name {name!r} is not a DNS label")


def check_digest(what: str, digest: str) -> None:
    """Refuse a malformed digest."""
    if not isinstance(digest, str) or not is_digest(digest):
        raise InvalidReleaseError(f"{what}: {digest!r} is not a sha256:<hex> digest")


def check_file_path(path: str) -> None:
    """Refuse a file path that could escape ``files/`` or is ambiguous."""
    ok = (
        isinstance(path, str)
        and 0 < len(path) <= 1024
        and "\\" not in path
        and "\0" not in path
        and not path.startswith("/")
        and unicodedata.is_normalized("NFC", path)
        and all(part not in ("", ".", "..") for part in path.split("/"))
    )
    if not ok:
        raise InvalidReleaseError(f"file path {path!r} is not a safe relative POSIX path")


def utc_now() -> str:
    """Timestamp in the format of ``release.json``'s ``committed_at``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FileRef(NamedTuple):
    """One raw file shipped by a ConfigSet."""

    path: str
    digest: Digest
    size: int


RefLike = ConfigSetRef | tuple[str, int, str]
"""A ConfigSet reference, or a plain ``(name, version, digest)`` tuple."""


def as_ref(value: RefLike) -> ConfigSetRef:
    """Normalize a :data:`RefLike` to the store's :class:`ConfigSetRef` (no size kept)."""
    if isinstance(value, tuple):
        name, version, digest = value[:3]
    else:
        name, version, digest = value.name, value.version, value.digest
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidReleaseError(f"ConfigSet {name!r}: version {version!r} is not an integer")
    return ConfigSetRef(ConfigSetName(str(name)), version, Digest(str(digest)))


@dataclass(frozen=True)
class ConfigSetDoc:
    """A verified, parsed ConfigSet blob."""

    ref: ConfigSetRef
    data: Mapping[str, Any]
    schema: Mapping[str, Any] | None
    files: tuple[FileRef, ...]

    @classmethod
    def parse(cls, ref: ConfigSetRef, blob: bytes) -> ConfigSetDoc:
        """Check ``blob`` against ``ref`` and parse it (contracts.md format)."""
        if digest_of(blob) != ref.digest:
            raise BlobIntegrityError(f"ConfigSet {ref.name}@{ref.version}: blob digest mismatch")
        try:
            doc = json.loads(blob)
            meta, spec = doc["metadata"], doc["spec"]
            ok = doc["kind"] == "ConfigSet" and isinstance(spec["data"], dict)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidReleaseError(f"ConfigSet {ref.name}: blob is not a ConfigSet") from exc
        if not ok or meta.get("name") != ref.name or meta.get("version") != ref.version:
            raise InvalidReleaseError(
                f"ConfigSet blob {ref.digest} is not {ref.name}@{ref.version}"
            )
        schema = spec.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise InvalidReleaseError(f"ConfigSet {ref.name}: spec.schema is not an object")
        files_raw = spec.get("files", {})
        if not isinstance(files_raw, dict):
            raise InvalidReleaseError(f"ConfigSet {ref.name}: spec.files is not an object")
        files = []
        for path, entry in sorted(files_raw.items()):
            check_file_path(path)
            if not isinstance(entry, dict):
                raise InvalidReleaseError(f"ConfigSet {ref.name} file {path}: entry not an object")
            d, size = str(entry.get("digest")), entry.get("size")
            check_digest(f"ConfigSet {ref.name} file {path}", d)
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InvalidReleaseError(f"ConfigSet {ref.name} file {path}: bad size {size!r}")
            files.append(FileRef(path, Digest(d), size))
        return cls(ref, spec["data"], schema, tuple(files))


@dataclass(frozen=True)
class StagedRelease:
    """A verified release offered to :meth:`AgentStore.commit`.

    ``blobs`` holds the ConfigSet and file blobs the caller fetched; it may omit
    blobs the store already holds. ``bundle`` is the signed Sigstore bundle,
    stored as a blob under the digest of its bytes so the agent can re-verify.
    ``release_digest`` is the release's identity as the verifier reports it
    (``VerifiedRelease.statement_digest``): the high-water marks hold it, so
    a re-signed bundle of the same statement is the same release.
    """

    group: GroupName
    sequence: Sequence
    release_id: ReleaseId
    release_digest: Digest
    bundle: bytes
    configsets: tuple[ConfigSetRef, ...]
    blobs: Mapping[Digest, bytes] = field(default_factory=dict)

    @classmethod
    def of(
        cls, release: Release, bundle: bytes, blobs: Mapping[Digest, bytes] | None = None
    ) -> StagedRelease:
        """Stage a verified ``release`` (e.g. ``VerifiedRelease.release``) and its bundle."""
        return cls(
            GroupName(release.group),
            Sequence(release.sequence),
            release.id,
            Digest(release.digest),
            bundle,
            release.configsets,
            {} if blobs is None else blobs,
        )

    @property
    def bundle_digest(self) -> Digest:
        """Where the bundle is stored in the CAS: the digest of its bytes."""
        return digest_of(self.bundle)

    def __post_init__(self) -> None:
        refs = tuple(as_ref(c) for c in self.configsets)
        object.__setattr__(self, "configsets", refs)


@dataclass(frozen=True)
class ReleaseView:
    """What a validator sees: the release with every ConfigSet parsed."""

    group: GroupName
    sequence: Sequence
    release_id: ReleaseId
    digest: Digest
    configsets: tuple[ConfigSetDoc, ...]

    @property
    def config(self) -> dict[str, Any]:
        """ConfigSet name -> ``spec.data``, as served to applications."""
        return {doc.ref.name: doc.data for doc in self.configsets}


@dataclass(frozen=True)
class ReleaseRecord:
    """The durable description of one release (STAGED body, manifest, snapshot)."""

    group: GroupName
    sequence: Sequence
    release_id: ReleaseId
    digest: Digest
    bundle: Digest
    configsets: tuple[ConfigSetRef, ...]
    files: tuple[FileRef, ...]
    committed_at: str
    layout: Mapping[str, Digest] = field(default_factory=dict)
    """Digest of every generated file of the release directory (``release.json``,
    ``config/<name>.json``), so the directory can be verified without its blobs."""

    def blob_digests(self) -> list[Digest]:
        """Every blob this release needs: bundle, ConfigSet blobs, file blobs."""
        out = [self.bundle, *(c.digest for c in self.configsets), *(f.digest for f in self.files)]
        return list(dict.fromkeys(out))

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible form (round-trips through :meth:`from_json`)."""
        return {
            "group": self.group,
            "sequence": self.sequence,
            "release_id": self.release_id,
            "digest": self.digest,
            "bundle": self.bundle,
            "configsets": [[c.name, c.version, c.digest] for c in self.configsets],
            "files": [list(f) for f in self.files],
            "committed_at": self.committed_at,
            "layout": dict(sorted(self.layout.items())),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ReleaseRecord:
        """Inverse of :meth:`to_json`; raises ``KeyError``/``TypeError`` on bad input."""
        return cls(
            GroupName(obj["group"]),
            Sequence(int(obj["sequence"])),
            ReleaseId(obj["release_id"]),
            Digest(obj["digest"]),
            Digest(obj["bundle"]),
            tuple(
                ConfigSetRef(ConfigSetName(n), int(v), Digest(d)) for n, v, d in obj["configsets"]
            ),
            tuple(FileRef(p, Digest(d), int(s)) for p, d, s in obj["files"]),
            str(obj["committed_at"]),
            {str(k): Digest(v) for k, v in obj["layout"].items()},
        )


@dataclass(frozen=True)
class CommittedRelease:
    """A committed release as served: what ``get`` and ``release.json`` show.

    ``needs_repair`` is true when a blob of this release failed its digest and
    could not be re-fetched; the release directory itself still verified.
    """

    group: GroupName
    release_id: ReleaseId
    sequence: Sequence
    digest: Digest
    config: Mapping[str, Any]
    committed_at: str
    path: Path
    needs_repair: bool = False
