"""The attack suite: each attack is refused with its own error and a reason that names it."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from konorkestra.model.canonical import canonical_bytes, digest_of
from konorkestra.trust import (
    BadSignature,
    DuplicateSignature,
    Expired,
    GroupState,
    HighWaterMark,
    LatestRelease,
    Limits,
    MalformedBundle,
    OutOfScope,
    RollbackAttack,
    RootRotationError,
    SequenceConflict,
    Signer,
    SubjectMismatch,
    ThresholdNotMet,
    TooLarge,
    TrustError,
    TrustRoot,
    UnknownKey,
    WrongPayloadType,
    WrongPredicateType,
    rotate_root,
)
from konorkestra.trust.dsse import INTOTO_PAYLOAD_TYPE, encode_bundle, sign_envelope
from konorkestra.trust.root import build_root_document, sign_root

if TYPE_CHECKING:
    from tests.trust.conftest import World

NOW = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=dt.UTC)


def edit(bundle: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """Apply ``change`` to the decoded bundle and re-encode it canonically."""
    doc = json.loads(bundle)
    change(doc)
    return canonical_bytes(doc)


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def refused(exc_type: type[TrustError], call: Callable[[], object], code: str) -> TrustError:
    with pytest.raises(exc_type) as info:
        call()
    assert type(info.value) is exc_type
    assert info.value.code == code
    assert "\n" not in info.value.reason and info.value.reason
    return info.value


# --- flipped bits -------------------------------------------------------------------------


def test_flipped_bit_in_payload(world: World) -> None:
    def change(doc: dict[str, Any]) -> None:
        payload = base64.b64decode(doc["dsseEnvelope"]["payload"])
        doc["dsseEnvelope"]["payload"] = base64.b64encode(flip(payload, 40)).decode()

    bad = edit(world.bundle(), change)
    refused(BadSignature, lambda: world.verifier().verify_release(bad), "bad_signature")


def test_flipped_bit_in_signature(world: World) -> None:
    def change(doc: dict[str, Any]) -> None:
        sig = base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"])
        doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(flip(sig, 20)).decode()

    bad = edit(world.bundle(), change)
    refused(BadSignature, lambda: world.verifier().verify_release(bad), "bad_signature")


def test_flipped_bit_in_payload_type(world: World) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["dsseEnvelope"]["payloadType"] = "application/vnd.in-toto+jsoo"

    bad = edit(world.bundle(), change)
    err = refused(
        WrongPayloadType, lambda: world.verifier().verify_release(bad), "wrong_payload_type"
    )
    assert "jsoo" in err.reason


def test_payload_type_is_signed_too(world: World) -> None:
    """A verifier that accepted another type would still fail: PAE covers the type."""
    env = sign_envelope("application/json", world.statement().to_payload(), [world.release_key])
    forged = edit(
        encode_bundle(env), lambda d: d["dsseEnvelope"].update(payloadType=INTOTO_PAYLOAD_TYPE)
    )
    refused(BadSignature, lambda: world.verifier().verify_release(forged), "bad_signature")


# --- keys ---------------------------------------------------------------------------------


def test_unknown_key(world: World) -> None:
    stranger = Signer.generate()
    bad = world.bundle(signers=[stranger])
    err = refused(UnknownKey, lambda: world.verifier().verify_release(bad), "unknown_key")
    assert stranger.keyid[:16] in err.reason


def test_timestamp_key_cannot_sign_a_release(world: World) -> None:
    bad = world.bundle(signers=[world.timestamp_keys[0]])
    refused(UnknownKey, lambda: world.verifier().verify_release(bad), "unknown_key")


def test_key_from_bundle_hint_is_never_used(world: World) -> None:
    """The attacker's bundle names the attacker's key in the hint and signature."""
    attacker = Signer.generate()
    bad = world.bundle(signers=[attacker])
    assert json.loads(bad)["verificationMaterial"]["publicKey"]["hint"] == attacker.keyid
    refused(UnknownKey, lambda: world.verifier().verify_release(bad), "unknown_key")


def test_trusted_keyid_with_attacker_key(world: World) -> None:
    attacker = Signer.generate()
    forged = edit(
        world.bundle(signers=[attacker]),
        lambda d: (
            d["verificationMaterial"]["publicKey"].update(hint=world.release_key.keyid),
            d["dsseEnvelope"]["signatures"][0].update(keyid=world.release_key.keyid),
        ),
    )
    refused(BadSignature, lambda: world.verifier().verify_release(forged), "bad_signature")


def test_hint_not_matching_signature(world: World) -> None:
    bad = edit(
        world.bundle(),
        lambda d: d["verificationMaterial"]["publicKey"].update(hint=Signer.generate().keyid),
    )
    refused(MalformedBundle, lambda: world.verifier().verify_release(bad), "malformed")


# --- signature counts ---------------------------------------------------------------------


def test_zero_signatures_threshold_one(world: World) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["dsseEnvelope"]["signatures"] = []
        doc["verificationMaterial"]["publicKey"]["hint"] = ""

    bad = edit(world.bundle(), change)
    err = refused(
        ThresholdNotMet, lambda: world.verifier().verify_release(bad), "threshold_not_met"
    )
    assert "0 of 1" in err.reason


def test_one_signature_threshold_two(world2: World) -> None:
    bad = world2.bundle(signers=world2.release_keys[:1])
    err = refused(
        ThresholdNotMet, lambda: world2.verifier().verify_release(bad), "threshold_not_met"
    )
    assert "1 of 2" in err.reason


def test_two_signatures_threshold_two_accepted(world2: World) -> None:
    good = world2.bundle(signers=world2.release_keys[1:])
    release = world2.verifier().verify_release(good)
    assert set(release.signers) == {k.keyid for k in world2.release_keys[1:]}


def test_two_signatures_one_foreign_threshold_two(world2: World) -> None:
    bad = world2.bundle(signers=[world2.release_keys[0], world2.timestamp_keys[0]])
    refused(UnknownKey, lambda: world2.verifier().verify_release(bad), "unknown_key")


def test_two_signatures_one_bad_threshold_one(world: World, make_world: type[World]) -> None:
    """An extra signature that does not verify is refused, not ignored."""
    other = Signer.generate()
    w = make_world(release_keys=[world.release_key, other])
    good = w.bundle(signers=[w.release_keys[0], other])

    def change(doc: dict[str, Any]) -> None:
        sig = base64.b64decode(doc["dsseEnvelope"]["signatures"][1]["sig"])
        doc["dsseEnvelope"]["signatures"][1]["sig"] = base64.b64encode(flip(sig, 30)).decode()

    refused(BadSignature, lambda: w.verifier().verify_release(edit(good, change)), "bad_signature")


def test_duplicate_signature_threshold_two(world2: World) -> None:
    key = world2.release_keys[0]
    bad = world2.bundle(signers=[key, key])
    refused(
        DuplicateSignature, lambda: world2.verifier().verify_release(bad), "duplicate_signature"
    )


# --- statement content --------------------------------------------------------------------


def _signed_statement(world: World, change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = world.statement().to_json()
    change(doc)
    return encode_bundle(
        sign_envelope(INTOTO_PAYLOAD_TYPE, canonical_bytes(doc), [world.release_key])
    )


def test_wrong_predicate_type(world: World) -> None:
    bad = _signed_statement(
        world, lambda d: d.update(predicateType="https://slsa.dev/provenance/v1")
    )
    err = refused(
        WrongPredicateType, lambda: world.verifier().verify_release(bad), "wrong_predicate_type"
    )
    assert "slsa" in err.reason


def test_wrong_statement_type(world: World) -> None:
    bad = _signed_statement(world, lambda d: d.update(_type="https://in-toto.io/Statement/v0.1"))
    refused(
        WrongPredicateType, lambda: world.verifier().verify_release(bad), "wrong_predicate_type"
    )


def test_freshness_bundle_is_not_a_release(world: World) -> None:
    """A timestamp-signed freshness statement presented as a release is refused."""
    fresh = world.freshness([])
    refused(UnknownKey, lambda: world.verifier().verify_release(fresh), "unknown_key")


def test_subject_digest_differs_from_blob(world: World) -> None:
    blobs = world.blob_map()
    first = next(iter(blobs))
    blobs[first] = world.configset_blob("checkout-api", 3, {"timeout_ms": 9999})
    bundle = world.bundle()
    refused(
        SubjectMismatch,
        lambda: world.verifier().verify_release(bundle, blobs),
        "subject_mismatch",
    )


def test_subject_list_differs_from_predicate(world: World) -> None:
    bad = _signed_statement(world, lambda d: d["subject"][0]["digest"].update(sha256="ee" * 32))
    refused(SubjectMismatch, lambda: world.verifier().verify_release(bad), "subject_mismatch")


def test_blob_longer_than_signed_size(world: World) -> None:
    release = world.verifier().verify_release(world.bundle())
    cs = release.statement.configsets[0]
    blob = world.blob_map()[cs.digest]
    with pytest.raises(SubjectMismatch, match="bytes; the release signed"):
        release.check_blob(cs.digest, blob + b" ")


# --- rollback, freeze, scope --------------------------------------------------------------


def test_replayed_older_sequence(world: World) -> None:
    old = world.bundle(sequence=4)
    verifier = world.verifier()
    verifier.verify_release(world.bundle(sequence=5))
    err = refused(RollbackAttack, lambda: verifier.verify_release(old), "rollback")
    assert "4 is below the trusted 5" in err.reason


def test_replay_against_persisted_mark(world: World) -> None:
    marks = {"checkout": HighWaterMark(9, "sha256:" + "aa" * 32)}
    refused(
        RollbackAttack,
        lambda: world.verifier(marks).verify_release(world.bundle(sequence=8)),
        "rollback",
    )


def test_same_sequence_different_content(world: World) -> None:
    verifier = world.verifier()
    verifier.verify_release(world.bundle(sequence=3))
    other = world.bundle(
        sequence=3, blobs={"checkout-api": world.configset_blob("checkout-api", 3, {"a": 1})}
    )
    refused(SequenceConflict, lambda: verifier.verify_release(other), "sequence_conflict")


def test_expired_release(world: World) -> None:
    bundle = world.bundle(ttl=dt.timedelta(hours=1))
    later = NOW + dt.timedelta(hours=1, minutes=2)
    err = refused(Expired, lambda: world.verifier(now=later).verify_release(bundle), "expired")
    assert "expired at 2025-06-01T13:00:00Z" in err.reason


def test_expired_freshness_is_stale_not_an_error(world: World) -> None:
    release = world.verifier().verify_release(world.bundle(sequence=2))
    marks = {"checkout": HighWaterMark(2, release.statement_digest)}
    fresh = world.freshness([LatestRelease("checkout", 2, release.statement_digest)])
    late = NOW + dt.timedelta(minutes=10)
    status = world.verifier(marks, now=late).check_freshness(fresh)
    assert status.stale
    assert status.groups == {"checkout": GroupState.CURRENT}
    assert not world.verifier(marks).check_freshness(fresh).stale


def test_freshness_reveals_withheld_news(world: World) -> None:
    marks = {"checkout": HighWaterMark(2, "sha256:" + "aa" * 32)}
    fresh = world.freshness([LatestRelease("checkout", 3, "sha256:" + "bb" * 32)])
    status = world.verifier(marks).check_freshness(fresh)
    assert status.withheld == ("checkout",) and not status.stale


def test_replayed_older_freshness(world: World) -> None:
    verifier = world.verifier()
    old = world.freshness([], now=NOW - dt.timedelta(minutes=2))
    verifier.check_freshness(world.freshness([]))
    refused(RollbackAttack, lambda: verifier.check_freshness(old), "rollback")


def test_group_outside_scope(world: World) -> None:
    bundle = world.bundle(group="payments")
    err = refused(OutOfScope, lambda: world.verifier().verify_release(bundle), "out_of_scope")
    assert "payments" in err.reason


def test_freshness_for_another_node(world: World) -> None:
    fresh = world.freshness([], node="node-02")
    refused(
        OutOfScope, lambda: world.verifier(node="node-01").check_freshness(fresh), "out_of_scope"
    )


# --- endless data ---------------------------------------------------------------------------


def test_oversized_envelope(world: World) -> None:
    bundle = world.bundle()
    small = world.verifier(limits=Limits(max_bundle_bytes=len(bundle) - 1))
    refused(TooLarge, lambda: small.verify_release(bundle), "too_large")
    huge = b"{" + b" " * (300 * 1024) + b"}"
    refused(TooLarge, lambda: world.verifier().verify_release(huge), "too_large")


def test_oversized_blob_signed_size(world: World) -> None:
    bundle = world.bundle()
    verifier = world.verifier(limits=Limits(max_blob_bytes=50))
    refused(TooLarge, lambda: verifier.verify_release(bundle), "too_large")


def test_oversized_blob_delivered(world: World) -> None:
    release = world.verifier(limits=Limits(max_blob_bytes=200)).verify_release(world.bundle())
    cs = release.statement.configsets[0]
    refused(TooLarge, lambda: release.check_blob(cs.digest, b"x" * 201), "too_large")


# --- malformed input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mutate"),
    [
        ("malformed json", lambda b: b[:-1]),
        ("trailing garbage", lambda b: b + b"{}"),
        ("trailing whitespace", lambda b: b + b"\n"),
        ("not utf-8", lambda b: b"\xff" + b),
        ("pretty printed", lambda b: json.dumps(json.loads(b), indent=1).encode()),
        (
            "duplicate key",
            lambda b: b.replace(b'{"dsseEnvelope":', b'{"dsseEnvelope":{},"dsseEnvelope":', 1),
        ),
        ("bad base64", lambda b: edit(b, lambda d: d["dsseEnvelope"].update(payload="!!!!"))),
        (
            "unpadded base64",
            lambda b: edit(b, lambda d: d["dsseEnvelope"].update(payload="YWJj" + "ZA")),
        ),
        (
            "stray padding bits",
            lambda b: edit(b, lambda d: d["dsseEnvelope"].update(payload="YR==")),
        ),
        (
            "tlog entries",
            lambda b: edit(b, lambda d: d["verificationMaterial"].update(tlogEntries=[{}])),
        ),
        (
            "certificate",
            lambda b: edit(b, lambda d: d["verificationMaterial"].update(certificate={})),
        ),
        ("wrong media type", lambda b: edit(b, lambda d: d.update(mediaType="application/json"))),
        ("not an object", lambda b: b"[]"),
        ("NaN", lambda b: b.replace(b'"tlogEntries":[]', b'"tlogEntries":NaN')),
    ],
)
def test_malformed_bundle(world: World, name: str, mutate: Callable[[bytes], bytes]) -> None:
    bad = mutate(world.bundle())
    refused(MalformedBundle, lambda: world.verifier().verify_release(bad), "malformed")


def test_duplicate_key_inside_signed_payload(world: World) -> None:
    payload = world.statement().to_payload().replace(b'"_type":', b'"_type":"x","_type":', 1)
    bad = encode_bundle(sign_envelope(INTOTO_PAYLOAD_TYPE, payload, [world.release_key]))
    err = refused(MalformedBundle, lambda: world.verifier().verify_release(bad), "malformed")
    assert "duplicate JSON key '_type'" in err.reason


# --- trust root rotation --------------------------------------------------------------------


def _root(world: World, version: int, signers: list[Signer], **roles: Any) -> bytes:
    keys = {
        "root": [k.public_key for k in world.root_keys],
        "release": [k.public_key for k in world.release_keys],
        "timestamp": [k.public_key for k in world.timestamp_keys],
    } | roles
    doc = build_root_document(
        version=version, expires=NOW + dt.timedelta(days=30), thresholds=world.thresholds, **keys
    )
    return sign_root(doc, signers)


def test_root_rotation_with_a_gap(world: World) -> None:
    v3 = _root(world, 3, world.root_keys)
    err = refused(RootRotationError, lambda: world.trust_root.update(v3, NOW), "root_rotation")
    assert "skips a version" in err.reason


def test_root_replayed_same_version(world: World) -> None:
    refused(
        RootRotationError,
        lambda: world.trust_root.update(world.root_bytes, NOW),
        "root_rotation",
    )


def test_root_rotation_with_n_minus_one_of_n(make_world: type[World]) -> None:
    keys = [Signer.generate() for _ in range(3)]
    w = make_world(root_keys=keys, thresholds={"root": 3})
    v2 = _root(w, 2, keys[:2])
    err = refused(ThresholdNotMet, lambda: w.trust_root.update(v2, NOW), "threshold_not_met")
    assert "2 of 3" in err.reason


def test_root_rotation_without_old_keys(world: World) -> None:
    new = Signer.generate()
    v2 = _root(world, 2, [new], root=[new.public_key])
    refused(ThresholdNotMet, lambda: world.trust_root.update(v2, NOW), "threshold_not_met")


def test_root_rotation_without_new_keys(world: World) -> None:
    new = Signer.generate()
    v2 = _root(world, 2, world.root_keys, root=[new.public_key])
    err = refused(ThresholdNotMet, lambda: world.trust_root.update(v2, NOW), "threshold_not_met")
    assert "its own" in err.reason


def test_expired_root_refused_as_final(world: World) -> None:
    v2 = _root(world, 2, world.root_keys)
    later = NOW + dt.timedelta(days=31)
    err = refused(Expired, lambda: world.trust_root.update(v2, later), "expired")
    assert "trust root v2" in err.reason


def test_expired_root_refused_by_verifier(world: World) -> None:
    later = NOW + dt.timedelta(days=366)
    refused(Expired, lambda: world.verifier(now=later), "expired")


def test_old_release_key_refused_after_rotation(world: World) -> None:
    new_release = Signer.generate()
    v2 = rotate_root(
        world.trust_root,
        signers=world.root_keys,
        expires=NOW + dt.timedelta(days=30),
        now=NOW,
        release=[new_release.public_key],
    )
    verifier = world.verifier()
    verifier.update_root([v2])
    refused(UnknownKey, lambda: verifier.verify_release(world.bundle()), "unknown_key")
    assert verifier.verify_release(world.bundle(signers=[new_release])).statement.sequence == 1


def test_tampered_root_bootstrap(world: World) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["payload"] = base64.b64encode(
            base64.b64decode(doc["payload"]).replace(b'"version":1', b'"version":7')
        ).decode()

    bad = edit(world.root_bytes, change)
    refused(BadSignature, lambda: TrustRoot.from_bytes(bad), "bad_signature")


def test_release_bytes_are_not_a_root(world: World) -> None:
    refused(MalformedBundle, lambda: TrustRoot.from_bytes(world.bundle()), "malformed")


def test_digest_of_blob_map_matches_subjects(world: World) -> None:
    """Control: the good path accepts what every attack above perturbs."""
    release = world.verifier().verify_release(world.bundle(), world.blob_map())
    assert release.blobs_checked
    assert {c.digest for c in release.statement.configsets} == set(world.blob_map())
    assert release.statement_digest == digest_of(
        base64.b64decode(json.loads(world.bundle())["dsseEnvelope"]["payload"])
    )
