"""A Policy step's label ``selector``: schema, model and canonical form (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest

from konorkestra.model.definitions import Policy, Step
from konorkestra.repo.schemas import kind_validator


def policy_doc(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "konorkestra.io/v1",
        "kind": "Policy",
        "metadata": {"name": "p"},
        "spec": {"strategy": "canary", "steps": steps},
    }


def test_schema_accepts_a_selector_of_strings() -> None:
    doc = policy_doc([{"percent": 5, "selector": {"zone": "eu-1"}}, {"percent": 100}])
    assert list(kind_validator("Policy").iter_errors(doc)) == []


@pytest.mark.parametrize(
    "selector",
    [{"zone": 1}, {"zone": ["eu-1"]}, {}, "zone=eu-1", {"zone": None}],
)
def test_schema_refuses_a_selector_that_is_not_labels(selector: object) -> None:
    doc = policy_doc([{"percent": 5, "selector": selector}, {"percent": 100}])
    assert list(kind_validator("Policy").iter_errors(doc)) != []


def test_from_spec_reads_the_selector() -> None:
    spec = {"strategy": "canary", "steps": [{"percent": 5, "selector": {"zone": "eu-1"}}]}
    (step,) = Policy.from_spec("p", spec).steps
    assert step == Step(5, 0, {"zone": "eu-1"})
    assert Policy.from_spec("p", {"strategy": "all-at-once"}).steps[0].selector == {}


def test_selector_is_in_the_canonical_form_only_when_present() -> None:
    with_selector = Policy.from_spec(
        "p", {"strategy": "canary", "steps": [{"percent": 5, "selector": {"zone": "eu-1"}}]}
    )
    plain = Policy.from_spec("p", {"strategy": "canary", "steps": [{"percent": 5}]})
    assert with_selector.canonical_dict()["spec"]["steps"] == [
        {"percent": 5, "bake": "0s", "selector": {"zone": "eu-1"}}
    ]
    assert plain.canonical_dict()["spec"]["steps"] == [{"percent": 5, "bake": "0s"}]
    assert with_selector.digest() != plain.digest()


def test_a_policy_without_selectors_keeps_its_digest() -> None:
    # Pinned with the model as it was before selectors existed: old digests must not move.
    spec = {
        "strategy": "canary",
        "steps": [{"percent": 5, "bake": "5m"}, {"percent": 100}],
        "guards": [{"signal": "error_rate", "threshold": 0.05}],
        "approval": "manual",
    }
    assert Policy.from_spec("x", spec).digest() == (
        "sha256:c96138c0a58bbd06baa935846ec2bedd1af4fded4af1c1ca221657afc53bd508"
    )
