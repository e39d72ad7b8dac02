"""The store's records: the model ConfigSetRef inside, the on-disk format unchanged."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from konorkestra.agent.store.errors import InvalidReleaseError
from konorkestra.agent.store.records import ReleaseRecord, StagedRelease, as_ref
from konorkestra.model.release import ConfigSetRef, PolicyRef, Release
from konorkestra.model.types import (
    ConfigSetName,
    Digest,
    GroupName,
    PolicyName,
    ReleaseId,
    Sequence,
)

T0 = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
API = ConfigSetRef(ConfigSetName("checkout-api"), 3, Digest("sha256:" + "ab" * 32), 120)


def _release() -> Release:
    return Release(
        group=GroupName("checkout"),
        sequence=Sequence(2),
        digest=Digest("sha256:" + "12" * 32),
        configsets=(API,),
        policy=PolicyRef(PolicyName("canary"), Digest("sha256:" + "cd" * 32)),
        created_at=T0,
        expires_at=T0 + dt.timedelta(days=90),
        previous_id=ReleaseId("checkout-1-0123456789abcdef"),
    )


def test_a_verified_release_enters_the_store_with_its_id_and_statement_digest() -> None:
    rel = _release()
    staged = StagedRelease.of(rel, b"bundle", {API.digest: b"blob"})
    assert (staged.group, staged.sequence) == ("checkout", 2)
    assert staged.release_id == rel.id == "checkout-2-1212121212121212"
    assert staged.release_digest == rel.digest
    assert staged.blobs == {API.digest: b"blob"}
    assert StagedRelease.of(rel, b"bundle").blobs == {}


def test_the_store_keeps_name_version_and_digest_but_no_size() -> None:
    staged = StagedRelease.of(_release(), b"bundle")
    assert staged.configsets == (ConfigSetRef(API.name, API.version, API.digest),)
    assert as_ref(("checkout-api", 3, API.digest)) == staged.configsets[0]


def test_a_ref_version_must_be_an_integer() -> None:
    with pytest.raises(InvalidReleaseError, match="not an integer"):
        as_ref(("checkout-api", "3", API.digest))  # type: ignore[arg-type]


def test_records_still_write_configsets_as_name_version_digest_triples() -> None:
    record = ReleaseRecord(
        GroupName("checkout"),
        Sequence(2),
        ReleaseId("checkout-2-1212121212121212"),
        Digest("sha256:" + "12" * 32),
        Digest("sha256:" + "34" * 32),
        (as_ref(API),),
        (),
        "2025-06-01T12:00:00Z",
    )
    written = json.loads(json.dumps(record.to_json()))
    assert written["configsets"] == [["checkout-api", 3, "sha256:" + "ab" * 32]]
    assert ReleaseRecord.from_json(written) == record
