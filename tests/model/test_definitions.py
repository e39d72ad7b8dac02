from __future__ import annotations

import json

import pytest

from konorkestra.model.canonical import canonical_bytes, digest_of
from konorkestra.model.definitions import (
    ConfigSet,
    ConfigSetSelector,
    DefinitionError,
    FileEntry,
    Group,
    Policy,
    is_name,
)
from konorkestra.model.durations import DurationError, format_duration, parse_duration
from konorkestra.model.signals import GUARD_SIGNALS, breaches
from konorkestra.model.types import ConfigSetName


def test_configset_canonical_form_matches_the_contract() -> None:
    cs = ConfigSet(
        ConfigSetName("checkout-api"),
        3,
        data={"b": [1, 2.0], "a": "x"},
        schema={"type": "object"},
        files={"nginx/nginx.conf": FileEntry.of(b"events {}\n")},
    )
    assert json.loads(cs.blob()) == {
        "apiVersion": "konorkestra.io/v1",
        "kind": "ConfigSet",
        "metadata": {"name": "checkout-api", "version": 3},
        "spec": {
            "data": {"a": "x", "b": [1, 2]},
            "schema": {"type": "object"},
            "files": {"nginx/nginx.conf": {"digest": digest_of(b"events {}\n"), "size": 10}},
        },
    }
    assert cs.blob() == canonical_bytes(cs.canonical_dict())
    assert cs.digest() == digest_of(cs.blob())
    assert cs.key == "checkout-api@3"


def test_schema_and_files_are_absent_when_unused() -> None:
    spec = ConfigSet(ConfigSetName("a"), 1, data={}).canonical_dict()["spec"]
    assert spec == {"data": {}}


def test_digest_depends_on_content_and_identity_only() -> None:
    base = ConfigSet(ConfigSetName("a"), 1, data={"x": 1})
    assert base.digest() == ConfigSet(ConfigSetName("a"), 1, data={"x": 1.0}).digest()
    assert base.digest() != ConfigSet(ConfigSetName("a"), 2, data={"x": 1}).digest()
    assert base.digest() != ConfigSet(ConfigSetName("a"), 1, data={"x": 2}).digest()
    with_file = ConfigSet(ConfigSetName("a"), 1, {"x": 1}, files={"f": FileEntry.of(b"1")})
    other_file = ConfigSet(ConfigSetName("a"), 1, {"x": 1}, files={"f": FileEntry.of(b"2")})
    assert with_file.digest() != other_file.digest()


@pytest.mark.parametrize(
    ("text", "name", "version"),
    [("web", "web", None), ("web@3", "web", 3), ("a-b-9@12", "a-b-9", 12)],
)
def test_configset_ref_parses(text: str, name: str, version: int | None) -> None:
    ref = ConfigSetSelector.parse(text)
    assert (ref.name, ref.version, str(ref)) == (name, version, text)


def test_a_version_may_be_written_with_a_v_as_the_seed_does() -> None:
    ref = ConfigSetSelector.parse("checkout-api@v12")
    assert (ref.name, ref.version, str(ref)) == ("checkout-api", 12, "checkout-api@12")


@pytest.mark.parametrize(
    "text",
    ["Web", "web@", "web@0", "web@x", "@3", "-web", "web@-1", "web@V12", "web@vv1", "web@v0",
     "web@\u00b2", "web@\u0661\u0662"],
)  # fmt: skip
def test_bad_configset_refs_are_errors(text: str) -> None:
    with pytest.raises(DefinitionError):
        ConfigSetSelector.parse(text)


def test_names_are_dns_labels() -> None:
    assert is_name("checkout-api") and is_name("a") and is_name("a" * 63)
    assert not any(is_name(n) for n in ["", "A", "a_b", "-a", "a-", "a" * 64, "a.b"])


def test_policy_defaults_are_applied_in_the_canonical_form() -> None:
    policy = Policy.from_spec("fast", {"strategy": "all-at-once"})
    assert policy.canonical_dict() == {
        "apiVersion": "konorkestra.io/v1",
        "kind": "Policy",
        "metadata": {"name": "fast"},
        "spec": {
            "strategy": "all-at-once",
            "steps": [{"percent": 100, "bake": "0s"}],
            "guards": [],
            "onFailure": "rollback",
            "approval": "auto",
        },
    }
    explicit = Policy.from_spec(
        "fast",
        {
            "strategy": "all-at-once",
            "steps": [{"percent": 100, "bake": "0s"}],
            "onFailure": "rollback",
            "approval": "auto",
            "guards": [],
        },
    )
    assert explicit.digest() == policy.digest()


def test_policy_digest_ignores_duration_spelling_but_not_values() -> None:
    def canary(bake: str) -> Policy:
        steps = [{"percent": 10, "bake": bake}, {"percent": 100}]
        return Policy.from_spec("c", {"strategy": "canary", "steps": steps})

    assert canary("90s").digest() == canary("1m30s").digest()
    assert canary("90s").digest() != canary("91s").digest()
    assert canary("5m").steps[0].bake_seconds == 300


def test_guards_carry_comparison_from_the_signal_table() -> None:
    spec = {"strategy": "all-at-once", "guards": [{"signal": "ack_success_rate", "threshold": 0.9}]}
    (guard,) = Policy.from_spec("p", spec).guards
    assert guard.comparison == "min"
    assert breaches("ack_success_rate", value=0.8, threshold=0.9)
    assert not breaches("ack_success_rate", value=0.9, threshold=0.9)
    assert breaches("latency_p99_ms", value=401, threshold=400)
    assert not breaches("latency_p99_ms", value=400, threshold=400)
    assert {"error_rate", "failed_acks", "latency_p99_ms", "stale_nodes"} <= set(GUARD_SIGNALS)


def test_group_from_spec() -> None:
    group = Group.from_spec("g", {"configSets": ["a", "b@2"], "policy": "p"})
    assert [str(r) for r in group.configsets] == ["a", "b@2"]
    assert group.policy == "p"


@pytest.mark.parametrize(
    ("text", "seconds"), [("0s", 0), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2h", 7200)]
)
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "1m1h", "1.5m", "-5s", "8d", "200h"])
def test_bad_durations_are_errors(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)
