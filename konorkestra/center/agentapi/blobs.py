"""Blob authorization for agents, the shell: read what the rule needs, serve what it allows.

Example::

    blobs = BlobAuthorizer()
    data = blobs.find_blob(engine, node.groups, digest)   # bytes, None, or PermissionError

The decision is :func:`konorkestra.center.agentapi.blobaccess.may_fetch`
(rules B1–B7): a node gets a blob only if a Release of one of its Groups
references it (a ConfigSet blob, a file of one, or the Release's signed bundle).

Invariants:

* A refused fetch is a :class:`PermissionError`, whether or not the blob exists;
  an allowed one that the store lacks is ``None``.
* Only Releases of ``groups`` are read; a node learns nothing about others.
* What a ConfigSet blob names and what a bundle's digest is never change, so
  both are remembered per process (:attr:`BlobAuthorizer.files`,
  :attr:`BlobAuthorizer.bundles`); the bundles still unknown are read in one
  query, and only when no ConfigSet grants the fetch.
* All reads use one read connection (no write lock, no second checkout).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.agentapi.blobaccess import ScopeRelease, may_fetch
from konorkestra.center.agentapi.entries import file_digests
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.model.canonical import digest_of
from konorkestra.model.types import Digest, GroupName, ReleaseId

R = schema.releases


@dataclass
class BlobAuthorizer:
    """Finds a blob for a node's Groups, remembering what never changes."""

    files: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    """ConfigSet blob digest -> the digests of the files it names."""
    bundles: dict[str, str] = field(default_factory=dict, repr=False)
    """Release id -> the digest of its signed bundle."""

    def find_blob(self, engine: Engine, groups: Collection[str], digest: str) -> bytes | None:
        """The blob ``digest`` if a Release of one of ``groups`` references it: a ConfigSet
        blob, a file of one, or a signed bundle (the agent stores bundles by digest too).

        Raises :class:`PermissionError` when no such Release references it.
        """
        if not groups:
            raise PermissionError(digest)  # B1: nothing to read
        with reader(engine).connect() as conn:  # read-only: no write lock
            rows = conn.execute(
                sa.select(R.c.id, R.c.group, R.c.configsets).where(R.c.group.in_(list(groups)))
            )
            releases = [
                ScopeRelease(
                    ReleaseId(r.id),
                    GroupName(r.group),
                    tuple(Digest(str(c["digest"])) for c in r.configsets),
                )
                for r in rows
            ]

            def files_of(cs: Digest) -> frozenset[str]:
                files = self.files.get(cs)
                if files is None:
                    b = schema.blobs
                    row = conn.execute(sa.select(b.c.data).where(b.c.digest == cs)).first()
                    files = file_digests(bytes(row.data)) if row is not None else frozenset()
                    self.files[cs] = files
                return files

            def bundle_digest(release: ReleaseId) -> str | None:
                unknown = [r.id for r in releases if r.id not in self.bundles]
                if unknown:  # all at once, the first time a bundle is asked about
                    found = conn.execute(sa.select(R.c.id, R.c.bundle).where(R.c.id.in_(unknown)))
                    for r in found:
                        self.bundles[r.id] = digest_of(bytes(r.bundle))
                return self.bundles.get(release)

            grant = may_fetch(
                digest, groups, releases, files_of=files_of, bundle_digest=bundle_digest
            )
            if grant is None:
                raise PermissionError(digest)
            # Same connection: a second checkout while holding this one can
            # exhaust the pool under load (every holder waiting for another).
            if grant.bundle_of is not None:
                row = conn.execute(sa.select(R.c.bundle).where(R.c.id == grant.bundle_of)).first()
                return None if row is None else bytes(row.bundle)
            b = schema.blobs
            data = conn.execute(sa.select(b.c.data).where(b.c.digest == digest)).scalar()
            return None if data is None else bytes(data)
