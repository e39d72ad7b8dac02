"""Trust root: bootstrap, rotation per TUF, thresholds, document checks."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import pytest

from konorkestra.model.canonical import canonical_bytes
from konorkestra.trust import (
    Expired,
    MalformedBundle,
    Signer,
    ThresholdNotMet,
    TooLarge,
    TrustRoot,
    UnknownKey,
    rotate_root,
)
from konorkestra.trust.root import MAX_ROOT_BYTES, RootDocument, build_root_document, sign_root

if TYPE_CHECKING:
    from tests.trust.conftest import World

NOW = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)


def test_bootstrap_loads_keys_per_role(world: World) -> None:
    root = TrustRoot.from_bytes(world.root_bytes)
    assert root.version == 1
    assert set(root.role_keys("release")) == {world.release_key.keyid}
    assert set(root.role_keys("timestamp")) == {world.timestamp_keys[0].keyid}
    assert root.threshold("root") == 1
    assert root.raw == world.root_bytes


def test_root_not_signed_by_its_own_root_keys_is_refused(world: World) -> None:
    doc = RootDocument.from_payload(json.dumps({}).encode()) if False else None
    assert doc is None
    v1 = build_root_document(
        version=1,
        expires=NOW + dt.timedelta(days=1),
        root=[world.root_keys[0].public_key],
        release=[world.release_key.public_key],
        timestamp=[world.timestamp_keys[0].public_key],
    )
    with pytest.raises(UnknownKey, match="not a root key"):
        TrustRoot.from_bytes(sign_root(v1, [world.release_key]))


def test_rotation_chain_with_expired_intermediate(world: World) -> None:
    k2, k3 = Signer.generate(), Signer.generate()
    v2 = rotate_root(
        world.trust_root,
        signers=[*world.root_keys, k2],
        root=[k2.public_key],
        expires=NOW + dt.timedelta(days=1),
        now=NOW,
    )
    v2_root = world.trust_root.update(v2, NOW)
    v3 = rotate_root(
        v2_root,
        signers=[k2, k3],
        root=[k3.public_key],
        expires=NOW + dt.timedelta(days=60),
        now=NOW,
    )
    later = NOW + dt.timedelta(days=10)  # v2 has expired by now; v3 has not
    final = world.trust_root.update_chain([v2, v3], later)
    assert final.version == 3 and set(final.role_keys("root")) == {k3.keyid}
    with pytest.raises(Expired):
        world.trust_root.update(v2, later)


def test_threshold_two_of_three_rotation() -> None:
    keys = [Signer.generate() for _ in range(3)]
    pubs = [k.public_key for k in keys]
    other = Signer.generate().public_key
    v1 = TrustRoot.from_bytes(
        sign_root(
            build_root_document(
                version=1,
                expires=NOW + dt.timedelta(days=9),
                root=pubs,
                release=[other],
                timestamp=[other],
                thresholds={"root": 2},
            ),
            keys[:2],
        )
    )
    v2 = rotate_root(v1, signers=keys[1:], expires=NOW + dt.timedelta(days=9), now=NOW)
    assert v1.update(v2, NOW).threshold("root") == 2
    with pytest.raises(ThresholdNotMet, match="1 of 2"):
        rotate_root(v1, signers=keys[:1], expires=NOW + dt.timedelta(days=9), now=NOW)


def test_root_document_rules(world: World) -> None:
    pub = world.release_key.public_key
    with pytest.raises(MalformedBundle, match="threshold 2 exceeds its 1 keys"):
        build_root_document(
            version=1,
            expires=NOW,
            root=[pub],
            release=[pub],
            timestamp=[pub],
            thresholds={"release": 2},
        )
    doc = build_root_document(version=1, expires=NOW, root=[pub], release=[pub], timestamp=[pub])
    payload = json.loads(doc.to_payload())
    kid = next(iter(payload["keys"]))
    payload["keys"]["0" * 64] = payload["keys"].pop(kid)
    payload["roles"] = {
        r: {"keyids": ["0" * 64], "threshold": 1} for r in ("release", "root", "timestamp")
    }
    with pytest.raises(MalformedBundle, match="key id is not the SHA-256 of the key"):
        RootDocument.from_payload(canonical_bytes(payload))


def test_root_size_cap(world: World) -> None:
    with pytest.raises(TooLarge):
        TrustRoot.from_bytes(b" " * (MAX_ROOT_BYTES + 1))
