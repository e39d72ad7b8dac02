"""The release statement: in-toto shape, release id, predicate rules."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import TYPE_CHECKING

import pytest

from konorkestra.model.canonical import digest_of
from konorkestra.model.release import ConfigSetRef, PolicyRef, Release
from konorkestra.model.releaseid import release_id
from konorkestra.trust import MalformedBundle, ReleaseStatement, Source

if TYPE_CHECKING:
    from tests.trust.conftest import World


def test_in_toto_statement_shape(world: World) -> None:
    st = world.statement(sequence=2)
    doc = json.loads(st.to_payload())
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["predicateType"] == "https://konorkestra.io/release/v1"
    hexes = {name: digest_of(blob)[7:] for name, blob in world.blobs.items()}
    assert doc["subject"] == [
        {"name": "checkout-api@3", "digest": {"sha256": hexes["checkout-api"]}},
        {"name": "checkout-flags@1", "digest": {"sha256": hexes["checkout-flags"]}},
    ]
    pred = doc["predicate"]
    assert pred["group"] == "checkout" and pred["sequence"] == 2
    assert pred["policy"]["name"] == "canary"
    assert set(pred["source"]) == {"repo", "commit", "author", "committedAt"}
    assert pred["createdAt"] == "2025-06-01T12:00:00Z"
    assert pred["expiresAt"] == "2025-07-01T12:00:00Z"
    assert pred["previousRelease"] == "checkout-1-0000000000000000"


def test_release_id_names_group_sequence_and_statement_digest(world: World) -> None:
    st = world.statement(sequence=12)
    digest = digest_of(st.to_payload())
    assert st.release_id() == release_id("checkout", 12, digest) == f"checkout-12-{digest[7:23]}"


def test_configsets_are_sorted_and_sub_second_times_dropped(world: World) -> None:
    st = world.statement(now=world.now + dt.timedelta(microseconds=123))
    assert [c.name for c in st.configsets] == ["checkout-api", "checkout-flags"]
    assert st.created_at.microsecond == 0


def test_create_refuses_what_a_verifier_would_refuse(world: World) -> None:
    st = world.statement()
    bad_group = dataclasses.replace(st, group="Check Out")
    with pytest.raises(MalformedBundle, match=r"predicate\.group"):
        ReleaseStatement.from_payload(bad_group.to_payload())
    twice = dataclasses.replace(st, configsets=st.configsets + st.configsets[:1])
    with pytest.raises(MalformedBundle, match="one per name"):
        ReleaseStatement.from_payload(twice.to_payload())
    with pytest.raises(MalformedBundle, match="previousRelease must be null"):
        ReleaseStatement.from_payload(
            dataclasses.replace(st, previous="checkout-1-" + "0" * 16).to_payload()
        )
    later = world.statement(sequence=5)
    with pytest.raises(MalformedBundle, match="not an earlier release of checkout"):
        ReleaseStatement.from_payload(
            dataclasses.replace(later, previous="search-4-" + "0" * 16).to_payload()
        )
    with pytest.raises(MalformedBundle, match="expiresAt is not after createdAt"):
        ReleaseStatement.from_payload(
            dataclasses.replace(st, expires_at=st.created_at).to_payload()
        )
    zero = ConfigSetRef("a", 0, "sha256:" + "0" * 64, 1)
    with pytest.raises(MalformedBundle, match="version must be an integer >= 1"):
        ReleaseStatement.from_payload(dataclasses.replace(st, configsets=(zero,)).to_payload())


def _golden() -> ReleaseStatement:
    when = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return ReleaseStatement.create(
        group="checkout",
        sequence=2,
        configsets=[
            ConfigSetRef("checkout-web", 1, "sha256:" + "ef" * 32, 7),
            ConfigSetRef("checkout-api", 3, "sha256:" + "ab" * 32, 120),
        ],
        policy=PolicyRef("canary", "sha256:" + "cd" * 32, strategy="canary"),
        source=Source("config-repo", "0" * 40, "Ana <ana@example.org>", when),
        now=when,
        previous="checkout-1-0123456789abcdef",
    )


def test_signed_bytes_are_pinned_and_the_policy_strategy_is_not_signed() -> None:
    # The digest of the payload before ConfigSetRef/PolicyRef moved to konorkestra.model:
    # a change here is a change of the signed format.
    payload = _golden().to_payload()
    assert b"strategy" not in payload
    assert digest_of(payload) == (
        "sha256:5f272323fe750fee52d654e7fe7605f6271e8a1a5f18395df5a43093bc976c9a"
    )


def test_statement_release_is_the_model_release_with_the_same_id() -> None:
    st = _golden()
    rel = st.release()
    assert isinstance(rel, Release)
    assert rel.id == st.release_id()
    assert (rel.group, rel.sequence, rel.configsets) == (st.group, st.sequence, st.configsets)
    assert rel.previous_id == "checkout-1-0123456789abcdef"
    assert rel.commit == "0" * 40
    assert (rel.created_at, rel.expires_at) == (st.created_at, st.expires_at)
    assert rel.state is None and rel.created_by is None
    assert st.release(rel.digest) == rel


def test_a_configset_without_a_size_cannot_be_signed(world: World) -> None:
    st = world.statement()
    sizeless = dataclasses.replace(st.configsets[0], size=None)
    with pytest.raises(MalformedBundle, match="size must be an integer"):
        ReleaseStatement.from_payload(dataclasses.replace(st, configsets=(sizeless,)).to_payload())
