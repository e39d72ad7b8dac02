"""Which blobs a node may fetch, rule by rule (``konorkestra/center/agentapi/blobaccess.py``).

No database: the Releases of a node's Groups, what ConfigSet blobs name and the
bundles' digests are passed in.
"""

from __future__ import annotations

from collections.abc import Collection

from konorkestra.center.agentapi.blobaccess import Grant, ScopeRelease, may_fetch
from konorkestra.model.types import Digest, GroupName, ReleaseId


def d(fill: str) -> Digest:
    return Digest("sha256:" + fill * 32)


API, WEB, INDEX = d("a1"), d("a2"), d("a3")
API_FILE, INDEX_FILE = d("f1"), d("f2")
CHECKOUT_1 = ScopeRelease(ReleaseId("checkout-1-aaaaaaaaaaaaaaaa"), GroupName("checkout"), (API,))
CHECKOUT_2 = ScopeRelease(
    ReleaseId("checkout-2-bbbbbbbbbbbbbbbb"), GroupName("checkout"), (API, WEB)
)
SEARCH_1 = ScopeRelease(ReleaseId("search-1-cccccccccccccccc"), GroupName("search"), (INDEX,))
RELEASES = [CHECKOUT_1, CHECKOUT_2, SEARCH_1]
FILES = {API: frozenset({API_FILE}), INDEX: frozenset({INDEX_FILE})}
BUNDLES = {CHECKOUT_1.id: d("b1"), CHECKOUT_2.id: d("b2"), SEARCH_1.id: d("b3")}


class Reads:
    """The shell's reads, recorded."""

    def __init__(self) -> None:
        self.files: list[Digest] = []
        self.bundles: list[ReleaseId] = []

    def files_of(self, cs: Digest) -> Collection[str]:
        self.files.append(cs)
        return FILES.get(cs, frozenset())

    def bundle_digest(self, release: ReleaseId) -> str | None:
        self.bundles.append(release)
        return BUNDLES.get(release)


def fetch(digest: str, scope: set[str], reads: Reads | None = None) -> Grant | None:
    r = reads or Reads()
    return may_fetch(digest, scope, RELEASES, files_of=r.files_of, bundle_digest=r.bundle_digest)


def test_B1_a_node_in_no_group_may_fetch_nothing() -> None:
    reads = Reads()
    assert fetch(API, set(), reads) is None
    assert fetch(BUNDLES[CHECKOUT_1.id], set(), reads) is None
    assert reads.files == [] and reads.bundles == []


def test_B2_a_configset_blob_of_a_release_in_scope_may_be_fetched() -> None:
    assert fetch(WEB, {"checkout"}) == Grant()
    assert fetch(API, {"checkout", "search"}) == Grant()


def test_B3_a_file_of_such_a_configset_may_be_fetched() -> None:
    assert fetch(API_FILE, {"checkout"}) == Grant()
    assert fetch(INDEX_FILE, {"search"}) == Grant()


def test_B4_the_signed_bundle_of_a_release_in_scope_is_served_from_that_release() -> None:
    assert fetch(BUNDLES[CHECKOUT_2.id], {"checkout"}) == Grant(bundle_of=CHECKOUT_2.id)
    assert fetch(BUNDLES[SEARCH_1.id], {"checkout", "search"}) == Grant(bundle_of=SEARCH_1.id)


def test_B5_releases_of_other_groups_grant_nothing() -> None:
    for digest in (INDEX, INDEX_FILE, BUNDLES[SEARCH_1.id]):
        assert fetch(digest, {"checkout"}) is None
    reads = Reads()
    fetch(d("ee"), {"checkout"}, reads)
    assert SEARCH_1.id not in reads.bundles and INDEX not in reads.files


def test_B6_anything_else_is_refused_whether_or_not_it_exists() -> None:
    assert fetch(d("ee"), {"checkout", "search"}) is None
    assert fetch("not-a-digest", {"checkout", "search"}) is None


def test_B7_configsets_first_bundles_only_when_nothing_else_grants() -> None:
    reads = Reads()
    assert fetch(API_FILE, {"checkout"}, reads) == Grant()
    assert reads.bundles == []
    reads = Reads()
    assert fetch(BUNDLES[CHECKOUT_1.id], {"checkout"}, reads) == Grant(bundle_of=CHECKOUT_1.id)
    assert sorted(reads.files) == sorted([API, WEB])  # API is in two Releases: asked once
    reads = Reads()
    assert fetch(API, {"checkout"}, reads) == Grant()
    assert reads.files == [] and reads.bundles == []
