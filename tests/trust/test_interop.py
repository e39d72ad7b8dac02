"""Interop: what the Sigstore and in-toto ecosystems make of everything we sign.

We sign three kinds of objects (``konorkestra.trust.sign`` and ``root``; the
Center calls exactly these: ``center/releases.py`` → ``sign_release``,
``center/routes/agent.py`` → ``sign_freshness``, ``center/datadir.py`` →
``make_root``):

* release bundles and freshness bundles: Sigstore bundle v0.3 JSON around a
  DSSE envelope of an in-toto Statement v1;
* trust roots: a bare DSSE envelope (``application/vnd.konorkestra.root+json``),
  not a bundle and not an in-toto Statement.

Each test documents one boundary (docs/reference/security.md, "Interoperability with
Sigstore and in-toto") and fails if the other library changes its mind.

The libraries are test dependencies (the ``dev`` extra). When one is missing
the module is skipped, except under ``KONORKESTRA_REQUIRE_ALL=1`` where a
missing library is a failure.
"""

from __future__ import annotations

import importlib
import json
import os
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
import rfc8785

from konorkestra.model.canonical import digest_of
from konorkestra.trust import LatestRelease, MalformedBundle, Signer, TrustRoot, keyid_of
from konorkestra.trust.dsse import (
    BUNDLE_MEDIA_TYPE,
    INTOTO_PAYLOAD_TYPE,
    Envelope,
    decode_bundle,
    decode_envelope,
    pae,
)
from konorkestra.trust.rootdoc import MAX_ROOT_BYTES, ROOT_PAYLOAD_TYPE
from konorkestra.trust.statement import RELEASE_PREDICATE_TYPE, STATEMENT_TYPE

if TYPE_CHECKING:
    from tests.trust.conftest import World


def need(module: str) -> ModuleType:
    """Import ``module``; skip if it is missing, fail under KONORKESTRA_REQUIRE_ALL=1."""
    if os.environ.get("KONORKESTRA_REQUIRE_ALL") == "1":
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            pytest.fail(
                f"interop tests need {module} ({exc}); install '.[dev]' "
                "(KONORKESTRA_REQUIRE_ALL=1 makes this a failure)",
                pytrace=False,
            )
    return pytest.importorskip(module, reason=f"{module} is not installed (pip install '.[dev]')")


sigstore_bundle = need("sigstore_models.bundle.v1")
sigstore_intoto = need("sigstore_models.intoto")
sigstore_models = need("sigstore.models")
sslib_dsse = need("securesystemslib.dsse")
sslib_signer = need("securesystemslib.signer")
sslib_exceptions = need("securesystemslib.exceptions")
intoto_statement = need("in_toto_attestation.v1.statement")
intoto_statement_pb2 = need("in_toto_attestation.v1.statement_pb2")
json_format = need("google.protobuf.json_format")

CAP = 1 << 20


def signed_bundles(world: World, world2: World) -> dict[str, tuple[bytes, Any]]:
    """Every kind of bundle we emit, with the trust root that verifies it."""
    latest = [LatestRelease("checkout", 1, "sha256:" + "ab" * 32)]
    return {
        "release": (world.bundle(), world),
        "release, threshold 2": (world2.bundle(signers=world2.release_keys[:2]), world2),
        "freshness": (world.freshness(latest), world),
        "freshness, no releases yet": (world.freshness([]), world),
    }


KINDS = ["release", "release, threshold 2", "freshness", "freshness, no releases yet"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def signed(kind: str, world: World, world2: World) -> tuple[bytes, World]:
    bundle, owner = signed_bundles(world, world2)[kind]
    return bundle, owner


def verify_with_konorkestra(bundle: bytes, owner: World, kind: str) -> object:
    """Our verifier, release or freshness as the kind says."""
    verifier = owner.verifier()
    if kind.startswith("release"):
        return verifier.verify_release(bundle)
    return verifier.check_freshness(bundle)


# --- sigstore-models: the bundle parses and every field is ours -------------------------


def test_every_bundle_parses_with_sigstore_models(signed: tuple[bytes, World]) -> None:
    bundle, _ = signed
    ours = decode_bundle(bundle, "bundle", limit=CAP)
    model = sigstore_bundle.Bundle.from_json(bundle)

    assert model.media_type == BUNDLE_MEDIA_TYPE == "application/vnd.dev.sigstore.bundle.v0.3+json"
    material = model.verification_material
    assert material.public_key.hint == ours.signatures[0].keyid
    assert material.certificate is None
    assert material.x509_certificate_chain is None
    assert material.tlog_entries == []
    assert model.message_signature is None
    envelope = model.dsse_envelope
    assert envelope.payload_type == INTOTO_PAYLOAD_TYPE
    assert envelope.payload == ours.payload
    assert [(s.keyid, s.sig) for s in envelope.signatures] == [
        (s.keyid, s.sig) for s in ours.signatures
    ]


def test_sigstore_python_refuses_our_bundles_for_lacking_a_certificate(
    signed: tuple[bytes, World],
) -> None:
    # sigstore.models.Bundle is the verifier's view: a v0.3 bundle must carry a
    # Fulcio leaf certificate. Ours carry a publicKey hint (keyless signing needs
    # an online CA and log), so this is the boundary, not a defect.
    bundle, _ = signed
    with pytest.raises(sigstore_models.InvalidBundle) as refused:
        sigstore_models.Bundle.from_json(bundle)
    assert str(refused.value) == "expected certificate in bundle"


def test_the_trust_root_is_a_dsse_envelope_not_a_bundle(world: World) -> None:
    ours = decode_envelope(world.root_bytes, "trust root", limit=MAX_ROOT_BYTES)
    model = sigstore_intoto.Envelope.from_json(world.root_bytes)
    assert model.payload_type == ROOT_PAYLOAD_TYPE
    assert model.payload == ours.payload
    assert [(s.keyid, s.sig) for s in model.signatures] == [
        (s.keyid, s.sig) for s in ours.signatures
    ]
    with pytest.raises(ValueError, match="mediaType"):
        sigstore_bundle.Bundle.from_json(world.root_bytes)


# --- DSSE: a third party verifies our signatures with securesystemslib ------------------


def sslib_keys(keys: list[Signer]) -> list[Any]:
    return [
        sslib_signer.SSlibKey.from_crypto(
            k.public_key, keyid=keyid_of(k.public_key), scheme="ecdsa-sha2-nistp256"
        )
        for k in keys
    ]


def pae_of(envelope: Envelope) -> bytes:
    return pae(envelope.payload_type, envelope.payload)


@pytest.mark.parametrize("kind", ["release", "release, threshold 2", "freshness"])
def test_securesystemslib_verifies_bundle_signatures(
    kind: str, world: World, world2: World
) -> None:
    bundle, owner = signed_bundles(world, world2)[kind]
    keys = owner.release_keys if kind.startswith("release") else owner.timestamp_keys
    role = "release" if kind.startswith("release") else "timestamp"
    threshold = owner.trust_root.threshold(role)
    envelope = sslib_dsse.Envelope.from_dict(json.loads(bundle)["dsseEnvelope"])
    ours = decode_bundle(bundle, "bundle", limit=CAP)
    assert envelope.pae() == pae_of(ours)
    accepted = envelope.verify(sslib_keys(keys), threshold)
    assert set(accepted) == {s.keyid for s in ours.signatures}
    with pytest.raises(sslib_exceptions.VerificationError):
        envelope.verify(sslib_keys([Signer.generate()]), 1)


def test_securesystemslib_verifies_the_trust_root(world: World) -> None:
    envelope = sslib_dsse.Envelope.from_dict(json.loads(world.root_bytes))
    assert envelope.payload_type == ROOT_PAYLOAD_TYPE
    accepted = envelope.verify(sslib_keys(world.root_keys), 1)
    assert set(accepted) == {world.root_keys[0].keyid}


# --- in-toto attestation bindings: the Statement v1 validates -----------------------------


def intoto(payload: bytes) -> Any:
    """Parse ``payload`` with the in-toto v1 bindings (unknown fields refused)."""
    pb = json_format.Parse(payload, intoto_statement_pb2.Statement())
    return intoto_statement.Statement.copy_from_pb(pb)


def test_release_statement_validates_with_in_toto_bindings(world: World) -> None:
    statement = world.statement(sequence=2)
    payload = statement.to_payload()
    parsed = intoto(payload)
    parsed.validate()
    pb = parsed.pb
    assert pb.type == STATEMENT_TYPE == intoto_statement.STATEMENT_TYPE_URI
    assert pb.predicate_type == RELEASE_PREDICATE_TYPE
    assert [(s.name, dict(s.digest)) for s in pb.subject] == [
        (cs.ref, {"sha256": cs.digest.removeprefix("sha256:")}) for cs in statement.configsets
    ]
    assert [s.name for s in pb.subject] == ["checkout-api@3", "checkout-flags@1"]
    # The predicate is a protobuf Struct: numbers become doubles. Our integers are
    # capped at 2**53-1 (sequence) or far below (size), so none loses a digit.
    predicate = json_format.MessageToDict(pb.predicate)
    assert predicate == json.loads(payload)["predicate"]
    assert predicate["sequence"] == 2


def test_freshness_statement_validates_with_in_toto_bindings(world: World) -> None:
    bundle = world.freshness([LatestRelease("checkout", 4, "sha256:" + "ab" * 32)])
    parsed = intoto(decode_bundle(bundle, "bundle", limit=CAP).payload)
    parsed.validate()
    assert parsed.pb.predicate_type == "https://konorkestra.io/freshness/v1"
    assert [(s.name, dict(s.digest)) for s in parsed.pb.subject] == [
        ("checkout-4-abababababababab", {"sha256": "ab" * 32})
    ]


def test_freshness_for_a_node_without_releases_is_not_a_valid_in_toto_statement(
    world: World,
) -> None:
    # Boundary: "as of now you hold nothing" has no subject, and the in-toto
    # bindings require at least one. Our verifier reads it (it is how a new node
    # learns it is not behind); an in-toto policy engine would refuse it.
    bundle = world.freshness([])
    assert world.verifier().check_freshness(bundle).groups == {}
    parsed = intoto(decode_bundle(bundle, "bundle", limit=CAP).payload)
    with pytest.raises(ValueError, match=r"^At least one subject required$"):
        parsed.validate()


# --- Re-serialization: which layer compares bytes ------------------------------------------


def reserialized(bundle: bytes) -> bytes:
    """The bundle after a round trip through sigstore-models (what a tool would write)."""
    return str(sigstore_bundle.Bundle.from_json(bundle).to_json()).encode("utf-8")


def test_reserialization_changes_member_order_only(signed: tuple[bytes, World]) -> None:
    bundle, _ = signed
    again = reserialized(bundle)
    assert again != bundle
    assert json.loads(again) == json.loads(bundle)  # every value, base64 text included
    assert again.startswith(b'{"mediaType":')  # schema order, not RFC 8785 order
    assert digest_of(again) != digest_of(bundle)  # so a CAS would file it elsewhere
    again_env = decode_bundle(rfc8785.dumps(json.loads(again)), "bundle", limit=CAP)
    assert again_env == decode_bundle(bundle, "bundle", limit=CAP)  # payload and sigs


def test_verifier_refuses_reserialized_bytes_before_any_signature_check(
    kind: str, signed: tuple[bytes, World]
) -> None:
    # R2: the verifier accepts only the canonical (RFC 8785) encoding, so a
    # release has exactly one bundle byte string. The signature would still
    # verify (it covers the DSSE PAE, see the securesystemslib test); the refusal
    # is the canonical-bytes rule in konorkestra.trust.wire.parse_canonical.
    bundle, owner = signed
    with pytest.raises(MalformedBundle) as refused:
        verify_with_konorkestra(reserialized(bundle), owner, kind)
    assert refused.value.code == "malformed"
    assert refused.value.reason.endswith("bundle is not in canonical JSON form (RFC 8785)")


def test_rfc8785_restores_the_exact_bundle_and_the_verifier_accepts_it(
    kind: str, signed: tuple[bytes, World]
) -> None:
    # The documented way back: canonicalize the JSON (any RFC 8785 library).
    bundle, owner = signed
    restored = rfc8785.dumps(json.loads(reserialized(bundle)))
    assert restored == bundle  # byte for byte: same CAS digest, same release
    verify_with_konorkestra(restored, owner, kind)


def test_reserialized_release_keeps_its_statement_digest(world: World) -> None:
    bundle = world.bundle()
    first = world.verifier().verify_release(bundle)
    restored = rfc8785.dumps(json.loads(reserialized(bundle)))
    again = world.verifier().verify_release(restored)
    assert again.statement_digest == first.statement_digest
    assert again.release_id == first.release_id


def test_reserialized_trust_root_needs_canonicalizing_too(world: World) -> None:
    again = str(sigstore_intoto.Envelope.from_json(world.root_bytes).to_json()).encode()
    assert json.loads(again) == json.loads(world.root_bytes)
    with pytest.raises(MalformedBundle, match="not in canonical JSON form"):
        TrustRoot.from_bytes(again)
    restored = rfc8785.dumps(json.loads(again))
    assert restored == world.root_bytes
    assert TrustRoot.from_bytes(restored).version == 1


# --- The skip/fail switch itself ----------------------------------------------------------


def test_missing_library_skips_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KONORKESTRA_REQUIRE_ALL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        need("konorkestra_no_such_module")


def test_missing_library_fails_under_require_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KONORKESTRA_REQUIRE_ALL", "1")
    with pytest.raises(pytest.fail.Exception, match="KONORKESTRA_REQUIRE_ALL=1"):
        need("konorkestra_no_such_module")
