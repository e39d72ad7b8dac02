"""The verifier's rules, each tested by its name in ``konorkestra.trust.verify``."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from konorkestra.trust import (
    Expired,
    FreshnessStatement,
    GroupState,
    HighWaterMark,
    LatestRelease,
    OutOfScope,
    RollbackAttack,
    SequenceConflict,
    SubjectMismatch,
)

if TYPE_CHECKING:
    from tests.trust.conftest import World


def test_good_release_reports_content_and_signers(world: World) -> None:
    release = world.verifier().verify_release(world.bundle(sequence=1), world.blob_map())
    assert release.statement.group == "checkout"
    assert release.signers == (world.release_key.keyid,)
    assert release.release_id == release.statement.release_id()
    assert release.blobs_checked and not release.redelivery


def test_a_verified_release_is_the_model_release_of_its_statement(world: World) -> None:
    verified = world.verifier().verify_release(world.bundle(sequence=1))
    release = verified.release
    assert release.id == verified.release_id
    assert release.digest == verified.statement_digest
    assert release == verified.statement.release()
    assert [c.ref for c in release.configsets] == ["checkout-api@3", "checkout-flags@1"]


def test_r6_no_scope_means_any_group(world: World) -> None:
    verifier = world.verifier(scope=None)
    assert verifier.verify_release(world.bundle(group="payments")).statement.group == "payments"
    with pytest.raises(OutOfScope):
        world.verifier(scope=set()).verify_release(world.bundle())


def test_r7_clock_skew_allowance(world: World) -> None:
    bundle = world.bundle(ttl=dt.timedelta(hours=1))
    expiry = world.now + dt.timedelta(hours=1)
    skew = dt.timedelta(seconds=30)
    world.verifier(now=expiry + skew, clock_skew=skew).verify_release(bundle)
    with pytest.raises(Expired):
        world.verifier(now=expiry + skew + dt.timedelta(seconds=1), clock_skew=skew).verify_release(
            bundle
        )


def test_r8_idempotent_redelivery(world: World) -> None:
    verifier = world.verifier()
    bundle = world.bundle(sequence=7)
    first = verifier.verify_release(bundle)
    again = verifier.verify_release(bundle)
    assert again.redelivery and not first.redelivery
    assert again.statement_digest == first.statement_digest


def test_r8_marks_persist_across_verifiers(world: World) -> None:
    first = world.verifier()
    release = first.verify_release(world.bundle(sequence=3))
    marks = first.high_water_marks
    assert marks == {"checkout": HighWaterMark(3, release.statement_digest)}
    later = world.verifier(dict(marks), now=world.now + dt.timedelta(days=1))
    assert later.verify_release(world.bundle(sequence=3)).redelivery
    with pytest.raises(RollbackAttack):
        later.verify_release(world.bundle(sequence=2))
    assert later.verify_release(world.bundle(sequence=9)).statement.sequence == 9


def test_r8_sequences_are_per_group(world: World) -> None:
    verifier = world.verifier()
    verifier.verify_release(world.bundle(group="checkout", sequence=9))
    assert verifier.verify_release(world.bundle(group="search", sequence=1))


def test_r9_missing_blob_when_blobs_given(world: World) -> None:
    blobs = world.blob_map()
    blobs.popitem()
    with pytest.raises(SubjectMismatch, match="was not given"):
        world.verifier().verify_release(world.bundle(), blobs)


def test_r9_check_blob_later(world: World) -> None:
    release = world.verifier().verify_release(world.bundle())
    assert not release.blobs_checked
    for digest, blob in world.blob_map().items():
        release.check_blob(digest, blob)
    with pytest.raises(SubjectMismatch, match="is not a subject"):
        release.check_blob("sha256:" + "0" * 64, b"")


def test_r10_refusal_changes_no_state(world: World) -> None:
    verifier = world.verifier()
    bad_blobs = {d: b + b"!" for d, b in world.blob_map().items()}
    with pytest.raises(SubjectMismatch):
        verifier.verify_release(world.bundle(sequence=5), bad_blobs)
    assert verifier.high_water_marks == {}
    assert verifier.verify_release(world.bundle(sequence=4)).statement.sequence == 4


def _held(world: World, sequence: int) -> tuple[dict[str, HighWaterMark], str]:
    release = world.verifier().verify_release(world.bundle(sequence=sequence))
    return {"checkout": HighWaterMark(sequence, release.statement_digest)}, release.statement_digest


def test_freshness_current_behind_ahead_unlisted(world: World) -> None:
    marks, digest = _held(world, 4)
    cases = {
        GroupState.CURRENT: [LatestRelease("checkout", 4, digest)],
        GroupState.BEHIND: [LatestRelease("checkout", 5, "sha256:" + "b" * 64)],
        GroupState.AHEAD: [LatestRelease("checkout", 3, "sha256:" + "b" * 64)],
        GroupState.UNLISTED: [],
    }
    for state, latest in cases.items():
        status = world.verifier(marks, node="node-01").check_freshness(world.freshness(latest))
        assert status.groups["checkout"] is state
        assert not status.stale
        assert status.signers == (world.timestamp_keys[0].keyid,)


def test_freshness_news_for_a_group_not_yet_held(world: World) -> None:
    status = world.verifier().check_freshness(
        world.freshness([LatestRelease("search", 1, "sha256:" + "c" * 64)])
    )
    assert status.withheld == ("search",)


def test_freshness_ignores_groups_outside_scope(world: World) -> None:
    status = world.verifier(scope={"checkout"}).check_freshness(
        world.freshness([LatestRelease("payments", 1, "sha256:" + "c" * 64)])
    )
    assert status.groups == {}


def test_freshness_same_sequence_other_digest(world: World) -> None:
    marks, _ = _held(world, 4)
    fresh = world.freshness([LatestRelease("checkout", 4, "sha256:" + "d" * 64)])
    with pytest.raises(SequenceConflict):
        world.verifier(marks).check_freshness(fresh)


def test_freshness_stale_exactly_past_expiry_plus_skew(world: World) -> None:
    fresh = world.freshness([], now=world.now)
    skew = dt.timedelta(seconds=10)
    edge = world.now + dt.timedelta(minutes=5) + skew
    assert not world.verifier(now=edge, clock_skew=skew).check_freshness(fresh).stale
    later = edge + dt.timedelta(seconds=1)
    assert world.verifier(now=later, clock_skew=skew).check_freshness(fresh).stale


def test_freshness_ttl_is_configurable(world: World) -> None:
    fs = FreshnessStatement.create(node="n", latest=[], now=world.now, ttl=dt.timedelta(seconds=30))
    assert fs.expires_at - fs.issued_at == dt.timedelta(seconds=30)
