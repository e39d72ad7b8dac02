"""DSSE PAE, envelopes and the Sigstore bundle v0.3 shape."""

from __future__ import annotations

import json

import pytest

from konorkestra.trust.dsse import (
    BUNDLE_MEDIA_TYPE,
    INTOTO_PAYLOAD_TYPE,
    decode_bundle,
    decode_envelope,
    encode_bundle,
    encode_envelope,
    pae,
    sign_envelope,
    verify_threshold,
)
from konorkestra.trust.errors import ThresholdNotMet
from konorkestra.trust.keys import Signer


def test_pae_matches_the_dsse_spec_vector() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_bundle_v03_shape() -> None:
    signer = Signer.generate()
    doc = json.loads(encode_bundle(sign_envelope(INTOTO_PAYLOAD_TYPE, b"{}", [signer])))
    assert doc["mediaType"] == BUNDLE_MEDIA_TYPE == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert doc["verificationMaterial"] == {"publicKey": {"hint": signer.keyid}, "tlogEntries": []}
    assert doc["dsseEnvelope"]["payload"] == "e30="
    assert doc["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    assert [s["keyid"] for s in doc["dsseEnvelope"]["signatures"]] == [signer.keyid]


def test_multi_signature_round_trip_and_threshold() -> None:
    a, b = Signer.generate(), Signer.generate()
    env = sign_envelope(INTOTO_PAYLOAD_TYPE, b'{"x":1}', [a, b])
    back = decode_bundle(encode_bundle(env), "bundle", limit=1 << 16)
    assert back == env
    keys = {a.keyid: a.public_key, b.keyid: b.public_key}
    assert verify_threshold(back, keys, 2, "release") == {a.keyid, b.keyid}
    with pytest.raises(ThresholdNotMet, match="2 of 3 required release signatures"):
        verify_threshold(back, keys, 3, "release")


def test_bare_envelope_round_trip() -> None:
    env = sign_envelope("application/x-test", b"abc", [Signer.generate()])
    assert decode_envelope(encode_envelope(env), "env", limit=4096) == env
