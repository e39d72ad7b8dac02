"""Which blobs a node may fetch: a pure rule over the Releases of its Groups.

Example::

    >>> from konorkestra.center.agentapi.blobaccess import ScopeRelease, may_fetch
    >>> cs = "sha256:" + "ab" * 32
    >>> rel = ScopeRelease("checkout-1-abababababababab", "checkout", (cs,))
    >>> may_fetch(cs, {"checkout"}, [rel], files_of=lambda d: (), bundle_digest=lambda r: None)
    Grant(bundle_of=None)
    >>> may_fetch(cs, {"search"}, [rel], files_of=lambda d: (), bundle_digest=lambda r: None)

:class:`~konorkestra.center.agentapi.blobs.BlobAuthorizer` reads the Releases
of the node's Groups, what ConfigSet blobs name and the bundles' digests (and
remembers the last two, which never change); this module decides. The rules,
each tested by name in ``tests/center/agentapi/test_blob_access.py``:

* **B1** A node in no Group may fetch nothing.
* **B2** A node may fetch the ConfigSet blob of a Release of one of its Groups.
* **B3** A node may fetch a file that such a ConfigSet blob names.
* **B4** A node may fetch the signed bundle of a Release of one of its Groups
  (the agent stores bundles by digest too); it is served from that Release.
* **B5** Releases of other Groups grant nothing: a node learns nothing about them.
* **B6** Anything else is refused, whether or not such a blob exists.
* **B7** ConfigSet blobs and their files are looked at before bundles: a
  bundle's digest is asked for only when no ConfigSet grants the fetch, and a
  ConfigSet shared by several Releases is asked about once.

Pure: no database, no clock; what is read is passed in as values and callables.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from konorkestra.model.types import Digest, GroupName, ReleaseId


@dataclass(frozen=True)
class ScopeRelease:
    """A Release as blob authorization sees it: its id, Group and ConfigSet blob digests."""

    id: ReleaseId
    group: GroupName
    configsets: tuple[Digest, ...]


@dataclass(frozen=True)
class Grant:
    """Where an allowed blob is served from: the blob store, or a Release's signed bundle."""

    bundle_of: ReleaseId | None = None


def may_fetch(
    digest: str,
    scope: Collection[str],
    releases: Iterable[ScopeRelease],
    *,
    files_of: Callable[[Digest], Collection[str]],
    bundle_digest: Callable[[ReleaseId], str | None],
) -> Grant | None:
    """The :class:`Grant` for blob ``digest``, or ``None`` when the node may not fetch it.

    ``scope`` is the node's Groups, ``releases`` (at least) their Releases;
    ``files_of`` tells the file digests a ConfigSet blob names, ``bundle_digest``
    the digest of a Release's signed bundle (``None`` if it has none).
    """
    if not scope:
        return None  # B1
    mine = [r for r in releases if r.group in scope]  # B5
    configsets = list(dict.fromkeys(cs for r in mine for cs in r.configsets))
    if digest in configsets:
        return Grant()  # B2
    if any(digest in files_of(cs) for cs in configsets):
        return Grant()  # B3
    for r in mine:
        if bundle_digest(r.id) == digest:
            return Grant(bundle_of=r.id)  # B4
    return None  # B6
