"""Blob authorization for agents: a node gets a blob only if a Release of one of
its Groups references it.

Example::

    blobs = BlobAuthorizer()
    data = blobs.find_blob(engine, node.groups, digest)   # bytes, None, or PermissionError

Invariants:

* A blob is referenced by a Release when it is one of the Release's ConfigSet
  blobs, a file one of those ConfigSets names, or the Release's signed bundle
  (the agent stores bundles by digest too). Anything else is a
  :class:`PermissionError`, whether or not the blob exists.
* Only Releases of ``groups`` are read; a node learns nothing about others.
* What a ConfigSet blob names and what a bundle's digest is never change, so
  both are remembered per process (:attr:`BlobAuthorizer.files`,
  :attr:`BlobAuthorizer.bundles`).
* All reads use one read connection (no write lock, no second checkout).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.agentapi.entries import file_digests
from konorkestra.center.store import schema
from konorkestra.center.store.engine import reader
from konorkestra.model.canonical import digest_of

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
        if groups:
            with reader(engine).connect() as conn:  # read-only: no write lock
                if self._referenced(conn, groups, digest):
                    # Same connection: a second checkout while holding this one can
                    # exhaust the pool under load (every holder waiting for another).
                    b = schema.blobs
                    data = conn.execute(sa.select(b.c.data).where(b.c.digest == digest)).scalar()
                    return None if data is None else bytes(data)
                rows = conn.execute(sa.select(R.c.id).where(R.c.group.in_(list(groups))))
                ids = [r.id for r in rows]
                unknown = [i for i in ids if i not in self.bundles]
                if unknown:
                    found = conn.execute(sa.select(R.c.id, R.c.bundle).where(R.c.id.in_(unknown)))
                    for r in found:
                        self.bundles[r.id] = digest_of(bytes(r.bundle))
                for rid in ids:
                    if self.bundles.get(rid) == digest:
                        row = conn.execute(sa.select(R.c.bundle).where(R.c.id == rid)).first()
                        return None if row is None else bytes(row.bundle)
        raise PermissionError(digest)

    def _referenced(self, conn: sa.Connection, groups: Collection[str], digest: str) -> bool:
        rows = conn.execute(sa.select(R.c.configsets).where(R.c.group.in_(list(groups))))
        configsets = {str(c["digest"]) for r in rows for c in r.configsets}
        if digest in configsets:
            return True
        for cs in configsets:
            files = self.files.get(cs)
            if files is None:
                b = schema.blobs
                row = conn.execute(sa.select(b.c.data).where(b.c.digest == cs)).first()
                files = file_digests(bytes(row.data)) if row is not None else frozenset()
                self.files[cs] = files
            if digest in files:
                return True
        return False
