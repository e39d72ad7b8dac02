"""The Release type: one per word, API JSON key for key, invariants by rule."""

from __future__ import annotations

import dataclasses
import datetime as dt
import doctest
from typing import Any

import pytest

from konorkestra.model import release as release_module
from konorkestra.model.release import ConfigSetRef, PolicyRef, Release
from konorkestra.model.types import Digest, GroupName, Sequence

T0 = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
STATEMENT = "sha256:" + "4bac2cc25a73b1f0" + "0" * 48
API = ConfigSetRef("payments-api", 4, "sha256:" + "ab" * 32, 120)
COMMON = ConfigSetRef("payments-common", 2, "sha256:" + "cd" * 32, 385)
POLICY = PolicyRef("all-at-once", "sha256:" + "ef" * 32, "all-at-once")


def _release(**changes: Any) -> Release:
    base = Release(
        group=GroupName("payments"),
        sequence=Sequence(2),
        digest=Digest(STATEMENT),
        configsets=(API, COMMON),
        policy=POLICY,
        created_at=T0,
        expires_at=T0 + dt.timedelta(days=90),
        previous_id="payments-1-0123456789abcdef",
        commit="a" * 40,
        state="created",
        reason=None,
        created_by="center:ingest",
    )
    return dataclasses.replace(base, **changes)


def test_module_example_runs() -> None:
    assert doctest.testmod(release_module).failed == 0


def test_configset_ref_names_name_at_version() -> None:
    assert API.ref == "payments-api@4"


def test_to_json_is_the_center_api_json_key_for_key() -> None:
    # docs/reference/api.md, "A Release"; the Center answers
    # release_from_row(row).to_json() (center/releases/rows.py).
    assert _release().to_json() == {
        "id": "payments-2-4bac2cc25a73b1f0",
        "group": "payments",
        "sequence": 2,
        "digest": STATEMENT,
        "state": "created",
        "commit": "a" * 40,
        "configsets": [
            {"name": "payments-api", "version": 4, "digest": "sha256:" + "ab" * 32, "size": 120},
            {"name": "payments-common", "version": 2, "digest": "sha256:" + "cd" * 32, "size": 385},
        ],
        "policy": {
            "name": "all-at-once",
            "digest": "sha256:" + "ef" * 32,
            "strategy": "all-at-once",
        },
        "previous_id": "payments-1-0123456789abcdef",
        "reason": None,
        "created_by": "center:ingest",
        "created_at": "2025-06-01T12:00:00Z",
        "expires_at": "2025-08-30T12:00:00Z",
    }


def test_times_are_spelt_in_utc_with_z_as_the_center_spells_them() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    rel = _release(created_at=dt.datetime(2025, 6, 1, 14, 0, 0, 250000, tzinfo=plus_two))
    assert rel.to_json()["created_at"] == "2025-06-01T12:00:00.250000Z"


def test_from_json_reads_back_what_to_json_wrote() -> None:
    rel = _release()
    assert Release.from_json(rel.to_json()) == rel
    first = _release(sequence=1, previous_id=None, state=None, created_by=None, commit=None)
    assert Release.from_json(first.to_json()) == first


def test_id_is_group_sequence_and_16_hex_of_the_statement_digest() -> None:
    assert _release().id == "payments-2-4bac2cc25a73b1f0"
    assert _release(sequence=3).id == "payments-3-4bac2cc25a73b1f0"


def test_from_json_refuses_an_id_that_names_another_release() -> None:
    js = _release().to_json()
    js["id"] = "payments-2-ffffffffffffffff"
    with pytest.raises(ValueError, match=r"release\.id"):
        Release.from_json(js)


@pytest.mark.parametrize(
    "configsets",
    [(), (COMMON, API), (API, dataclasses.replace(API, version=5))],
    ids=["empty", "unsorted", "two-versions"],
)
def test_configsets_are_non_empty_sorted_one_version_per_name(
    configsets: tuple[ConfigSetRef, ...],
) -> None:
    with pytest.raises(ValueError, match="non-empty, sorted, one per name"):
        _release(configsets=configsets)


def test_every_digest_is_sha256_hex() -> None:
    with pytest.raises(ValueError, match="release digest"):
        _release(digest="sha256:xyz")
    with pytest.raises(ValueError, match="payments-api@4 digest"):
        _release(configsets=(dataclasses.replace(API, digest="md5:00"), COMMON))


def test_sequence_is_a_positive_integer() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        _release(sequence=0, previous_id=None)


def test_previous_id_is_null_exactly_for_sequence_one() -> None:
    with pytest.raises(ValueError, match="names a previous release"):
        _release(sequence=1)
    with pytest.raises(ValueError, match="not an earlier release"):
        _release(previous_id=None)


@pytest.mark.parametrize(
    "previous", ["search-1-0123456789abcdef", "payments-2-0123456789abcdef", "payments-1"]
)
def test_previous_id_is_an_earlier_release_of_the_same_group(previous: str) -> None:
    with pytest.raises(ValueError, match="not an earlier release"):
        _release(previous_id=previous)


def test_times_are_aware_and_expiry_follows_creation() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _release(created_at=T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="not after created_at"):
        _release(expires_at=T0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sequence": "2"}, "release.sequence"),
        ({"configsets": "payments-api@4"}, "release.configsets"),
        ({"policy": {"name": "all-at-once"}}, "release.policy.digest"),
        ({"created_at": "2025-06-01T12:00:00"}, "release.created_at"),
        ({"created_at": "yesterday"}, "release.created_at"),
        ({"reason": 7}, "release.reason"),
    ],
)
def test_from_json_names_the_field_it_refuses(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        Release.from_json({**_release().to_json(), **change})


def test_from_json_refuses_a_missing_key() -> None:
    js = _release().to_json()
    del js["created_by"]
    with pytest.raises(ValueError, match=r"release\.created_by is missing"):
        Release.from_json(js)


def test_a_configset_index_is_named_when_it_is_refused() -> None:
    js = _release().to_json()
    js["configsets"][1]["version"] = 0
    with pytest.raises(ValueError, match=r"release\.configsets\[1\]\.version"):
        Release.from_json(js)


def test_configset_size_is_optional_where_it_was_never_kept() -> None:
    ref = ConfigSetRef.from_json({"name": "api", "version": 1, "digest": API.digest})
    assert ref.size is None
    assert ref == ConfigSetRef("api", 1, API.digest)
    assert ConfigSetRef.from_json(API.to_json()) == API


def test_a_stored_policy_body_is_not_part_of_the_reference() -> None:
    stored = {**POLICY.to_json(), "body": {"kind": "Policy"}}
    assert PolicyRef.from_json(stored) == POLICY


def test_configset_looks_up_the_version_a_release_carries() -> None:
    rel = _release()
    assert rel.configset("payments-common") == COMMON
    assert rel.configset("search") is None
