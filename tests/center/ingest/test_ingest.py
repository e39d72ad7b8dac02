"""Git ingest against real repositories: accept, reject, release exactly what changed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from konorkestra.center.app.datadir import Opened
from konorkestra.center.app.metrics import CenterMetrics
from konorkestra.center.ingest import build_ingest
from konorkestra.center.ingest.published import store_history
from konorkestra.center.ingest.worker import IngestService
from konorkestra.center.releases.signer import Releaser
from konorkestra.center.store import schema
from konorkestra.model.canonical import digest_of
from konorkestra.trust.root import TrustRoot
from konorkestra.trust.verify import Verifier
from tests.helpers.configrepo import BROKEN_GROUP, payments_common, seeded
from tests.helpers.git import EXAMPLES, WorkRepo, git

pytestmark = pytest.mark.postgresql


class Rig:
    def __init__(self, opened: Opened, bare: Path, work: WorkRepo) -> None:
        self.opened, self.bare, self.work = opened, bare, work
        self.releaser = Releaser([opened.signers["release"]], source_repo="config.git")
        self.service = self.new_service()

    def new_service(self) -> IngestService:
        return build_ingest(
            self.opened.engine,
            self.releaser,
            CenterMetrics(),
            repo=str(self.bare),
            branch="main",
            mirror=self.opened.data.mirror,
            watch=False,
        )

    def ingest(self) -> None:
        self.service.run_once()
        assert self.service.status()["last_error"] is None, self.service.status()

    def rows(self, table: sa.Table, *where: object) -> list[sa.Row[object]]:
        with self.opened.engine.connect() as conn:
            return list(conn.execute(sa.select(table).where(*where)))  # type: ignore[arg-type]

    def sequences(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for r in sorted(self.rows(schema.releases), key=lambda r: r.sequence):
            out.setdefault(r.group, []).append(r.sequence)
        return out


@pytest.fixture
def rig(opened: Opened, tmp_path: Path) -> Iterator[Rig]:
    bare, work = seeded(tmp_path)
    yield Rig(opened, bare, work)


def test_first_commit_is_accepted_and_every_group_gets_sequence_1(rig: Rig) -> None:
    rig.ingest()
    [commit] = rig.rows(schema.commits)
    assert (commit.sha, commit.status, commit.subject) == (
        rig.work.head(),
        "accepted",
        "initial config",
    )
    assert rig.sequences() == {"checkout": [1], "payments": [1], "payments-eu": [1]}


def test_an_accepted_commit_is_audited_with_its_author_warnings_and_releases(rig: Rig) -> None:
    rig.ingest()
    [commit] = rig.rows(schema.commits)
    [event] = rig.rows(schema.audit, schema.audit.c.action == "commit.accepted")
    assert event.actor == "center:ingest"
    details = event.details
    assert (details["sha"], details["subject"], details["author"]) == (
        commit.sha,
        "initial config",
        commit.author,
    )
    assert details["warnings"] == 0 == len(commit.diagnostics)
    assert sorted(details["releases"]) == sorted(r.id for r in rig.rows(schema.releases))


def test_blobs_cover_configsets_and_raw_files(rig: Rig) -> None:
    rig.ingest()
    blobs = {r.digest: bytes(r.data) for r in rig.rows(schema.blobs)}
    for digest, data in blobs.items():
        assert digest_of(data) == digest
    raw = (rig.work.path / "files/nginx/payments.conf").read_bytes()
    assert digest_of(raw) in blobs
    for release in rig.rows(schema.releases):
        for cs in release.configsets:
            assert cs["digest"] in blobs and cs["size"] == len(blobs[cs["digest"]])


def test_every_release_verifies_with_its_blobs_against_the_trust_root(rig: Rig) -> None:
    rig.ingest()
    rig.work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
    rig.work.commit("v2")
    rig.work.push()
    rig.ingest()
    blobs = {r.digest: bytes(r.data) for r in rig.rows(schema.blobs)}
    root = TrustRoot.from_bytes(rig.opened.trust_root)
    verifier = Verifier(root, {}, dt.datetime.now(dt.UTC))
    for release in sorted(rig.rows(schema.releases), key=lambda r: r.sequence):
        verified = verifier.verify_release(bytes(release.bundle), blobs)
        st = verified.statement
        assert (st.group, st.sequence, verified.release_id) == (
            release.group,
            release.sequence,
            release.id,
        )
        assert verified.statement_digest == release.digest
        assert st.previous == release.previous_id


def test_changing_one_configset_releases_exactly_the_groups_using_it(rig: Rig) -> None:
    rig.ingest()
    rig.work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
    sha = rig.work.commit("payments-common v2")
    rig.work.push()
    rig.ingest()
    assert rig.sequences() == {"checkout": [1], "payments": [1, 2], "payments-eu": [1, 2]}
    second = rig.rows(schema.releases, schema.releases.c.sequence == 2)
    assert {r.commit for r in second} == {sha}
    first = {r.group: r.id for r in rig.rows(schema.releases, schema.releases.c.sequence == 1)}
    assert all(r.previous_id == first[r.group] for r in second)


def test_a_commit_that_changes_nothing_releasable_creates_no_release(rig: Rig) -> None:
    rig.ingest()
    rig.work.write("README.md", "docs only\n")
    rig.work.commit("docs")
    rig.work.push()
    rig.ingest()
    assert rig.sequences() == {"checkout": [1], "payments": [1], "payments-eu": [1]}
    assert [c.status for c in rig.rows(schema.commits)] == ["accepted", "accepted"]


def test_an_invalid_commit_is_rejected_with_diagnostics_and_releases_nothing(rig: Rig) -> None:
    rig.ingest()
    before = {r.id for r in rig.rows(schema.releases)}
    rig.work.write("groups/broken.yaml", BROKEN_GROUP)
    sha = rig.work.commit("a broken group")
    rig.work.push()
    rig.ingest()
    [bad] = rig.rows(schema.commits, schema.commits.c.sha == sha)
    assert bad.status == "rejected"
    codes = {d["code"] for d in bad.diagnostics}
    assert "missing-policy" in codes
    [diag] = [d for d in bad.diagnostics if d["code"] == "missing-policy"]
    assert diag["file"] == "groups/broken.yaml" and diag["line"]
    assert {r.id for r in rig.rows(schema.releases)} == before
    assert not rig.rows(schema.group_states, schema.group_states.c.commit == sha)
    actions = [a.action for a in rig.rows(schema.audit)]
    assert actions[-1] == "commit.rejected"


def test_changing_a_published_version_without_a_bump_is_rejected(rig: Rig) -> None:
    rig.ingest()
    rig.work.write("configsets/payments-common.yaml", payments_common(1, "GBP"))
    sha = rig.work.commit("sneaky edit of payments-common@1")
    rig.work.push()
    rig.ingest()
    [bad] = rig.rows(schema.commits, schema.commits.c.sha == sha)
    assert bad.status == "rejected"
    [diag] = [d for d in bad.diagnostics if d["code"] == "immutable-version"]
    assert diag["file"] == "configsets/payments-common.yaml"
    assert "payments-common@1" in diag["message"]


def test_a_force_push_cannot_redefine_a_version_the_center_accepted(
    rig: Rig, tmp_path: Path
) -> None:
    rig.ingest()
    other = WorkRepo.clone(rig.bare, tmp_path / "rewrite")
    other.copy_tree(EXAMPLES / "config-repo")
    other.write("configsets/payments-common.yaml", payments_common(1, "JPY"))
    other.commit("rewritten history")
    git(other.path, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/main")
    rig.ingest()
    [bad] = rig.rows(schema.commits, schema.commits.c.sha == other.head())
    assert bad.status == "rejected"
    assert any(d["code"] == "immutable-version" for d in bad.diagnostics)


def test_two_commits_pushed_at_once_are_processed_in_order(rig: Rig) -> None:
    rig.ingest()
    rig.work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
    first = rig.work.commit("v2")
    rig.work.write("configsets/payments-common.yaml", payments_common(3, "CHF"))
    second = rig.work.commit("v3")
    rig.work.push()
    rig.ingest()
    commits = sorted(rig.rows(schema.commits), key=lambda c: c.seq)
    assert [c.sha for c in commits][-2:] == [first, second]
    payments = sorted(
        rig.rows(schema.releases, schema.releases.c.group == "payments"), key=lambda r: r.sequence
    )
    assert [(r.sequence, r.commit, r.configsets[0]["version"]) for r in payments] == [
        (1, commits[0].sha, 1),
        (2, first, 2),
        (3, second, 3),
    ]


def test_restart_loses_nothing_and_does_not_re_release(rig: Rig) -> None:
    rig.ingest()
    rig.work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
    rig.work.commit("v2")
    rig.work.push()
    rig.ingest()
    before = [(r.id, r.sequence) for r in rig.rows(schema.releases)]
    url = rig.opened.engine.url.render_as_string(hide_password=False)
    rig.opened.engine.dispose()  # a new process: new engine, new service, same data
    from konorkestra.center.app.datadir import open_data_dir

    rig.opened = open_data_dir(rig.opened.data.path, db_url=url)
    assert rig.opened.new_admin_token is None
    rig.service = rig.new_service()
    rig.ingest()
    assert [(r.id, r.sequence) for r in rig.rows(schema.releases)] == before
    assert len(rig.rows(schema.commits)) == 2


def test_a_crash_between_commits_resumes_with_the_next_one(rig: Rig) -> None:
    rig.ingest()
    rig.work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
    first = rig.work.commit("v2")
    rig.work.write("configsets/payments-common.yaml", payments_common(3, "CHF"))
    rig.work.commit("v3")
    rig.work.push()
    processor = rig.service.processor
    [meta, _] = rig.service.source.new_commits(processor.known)
    assert meta.sha == first
    processor.process(meta)  # ... and the process dies here
    rig.service = rig.new_service()
    rig.ingest()
    assert rig.sequences()["payments"] == [1, 2, 3]
    assert len(rig.rows(schema.commits)) == 3


def test_a_remote_url_is_fetched_into_a_mirror(opened: Opened, tmp_path: Path) -> None:
    bare, work = seeded(tmp_path)
    releaser = Releaser([opened.signers["release"]], source_repo="remote")
    service = build_ingest(
        opened.engine,
        releaser,
        CenterMetrics(),
        repo=bare.as_uri(),
        branch="main",
        mirror=opened.data.mirror,
    )
    assert service.source.url == bare.as_uri() and service.source.path == opened.data.mirror
    service.run_once()
    assert service.status()["last_error"] is None
    with opened.engine.connect() as conn:
        shas = list(conn.execute(sa.select(schema.commits.c.sha)).scalars())
    assert shas == [work.head()]
    work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
    second = work.commit("v2")
    work.push()
    service.run_once()
    with opened.engine.connect() as conn:
        shas = list(
            conn.execute(sa.select(schema.commits.c.sha).order_by(schema.commits.c.seq)).scalars()
        )
    assert shas[-1] == second


def test_an_unreachable_remote_is_reported_and_nothing_changes(
    opened: Opened, tmp_path: Path
) -> None:
    releaser = Releaser([opened.signers["release"]], source_repo="remote")
    gone = (tmp_path / "missing.git").as_uri()
    service = build_ingest(
        opened.engine,
        releaser,
        CenterMetrics(),
        repo=gone,
        branch="main",
        mirror=opened.data.mirror,
    )
    service.run_once()
    assert service.status()["last_error"]
    with opened.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.commits)).scalar() == 0


def test_a_commit_is_parsed_checked_and_stored_incrementally(rig: Rig) -> None:
    rig.ingest()
    processor = rig.service.processor
    stats = processor.loader.cache.stats
    before = (stats.parses, stats.facts_computed, stats.builds)
    assert before[0] > 5
    rig.work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
    rig.work.commit("payments-common v2")
    rig.work.push()
    rig.ingest()
    # Only the one changed file is parsed, checked and built again.
    assert (stats.parses, stats.facts_computed, stats.builds) == tuple(b + 1 for b in before)
    versions = rig.rows(schema.configset_versions)
    with rig.opened.engine.connect() as conn:
        assert dict(processor.published.current(conn)) == dict(store_history(conn))
        assert processor.published.rows_read == len(versions)  # each version row read once
        processor.published.current(conn)
        assert processor.published.rows_read == len(versions)  # nothing new: nothing read
    assert "payments-common@2" in {f"{v.name}@{v.version}" for v in versions}


def test_processors_sharing_a_store_stay_in_step(rig: Rig) -> None:
    first = rig.service
    first.run_once()
    rig.work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
    rig.work.commit("v2")
    rig.work.push()
    second = rig.new_service()  # e.g. a restarted Center
    second.run_once()
    assert rig.sequences()["payments"] == [1, 2]
    rig.work.write("README.md", "docs only\n")
    rig.work.commit("docs")
    rig.work.push()
    first.run_once()  # its remembered states are of the first commit, not of v2
    assert rig.sequences() == {"checkout": [1], "payments": [1, 2], "payments-eu": [1, 2]}
    rig.work.write("configsets/payments-common.yaml", payments_common(2, "GBP"))
    sneaky = rig.work.commit("sneaky edit of payments-common@2, published by the other")
    rig.work.push()
    first.run_once()
    [bad] = rig.rows(schema.commits, schema.commits.c.sha == sneaky)
    assert bad.status == "rejected"
    assert [d["code"] for d in bad.diagnostics] == ["immutable-version"]
