from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from konorkestra.model.canonical import digest_of
from konorkestra.repo import ResolveError, load_commit, load_worktree, resolve

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "config-repo"


def test_groups_resolve_to_policies_and_exact_versions() -> None:
    resolved = resolve(load_worktree(EXAMPLE))
    assert sorted(resolved.groups) == ["checkout", "payments"]
    checkout = resolved.groups["checkout"]
    assert checkout.policy.name == "canary" and checkout.policy.strategy == "canary"
    assert checkout.policy_digest == checkout.policy.digest()
    # A bare name resolves to the highest version in the commit.
    assert [cs.key for cs in checkout.configsets] == ["checkout-api@2", "checkout-flags@3"]
    assert sorted(resolved.configsets) == [
        "checkout-api@1",
        "checkout-api@2",
        "checkout-flags@3",
        "payments-common@1",
    ]


def test_blob_is_the_canonical_contract_form_with_files() -> None:
    resolved = resolve(load_worktree(EXAMPLE))
    [payments] = resolved.groups["payments"].configsets
    assert payments.digest == digest_of(payments.blob)
    conf = (EXAMPLE / "files/nginx/payments.conf").read_bytes()
    assert payments.files == {"files/nginx/payments.conf": conf}
    blob = json.loads(payments.blob)
    assert blob["spec"]["files"] == {
        "files/nginx/payments.conf": {"digest": digest_of(conf), "size": len(conf)}
    }
    assert "labels" not in blob["metadata"]
    api = resolved.configsets["checkout-api@2"]
    schema = json.loads((EXAMPLE / "schemas/checkout-api.schema.json").read_text())
    assert json.loads(api.blob)["spec"]["schema"] == schema  # $ref is inlined


def test_commit_and_worktree_resolve_identically(repo: Any) -> None:
    repo.copy_tree(EXAMPLE)
    sha = repo.commit("example")
    from_git = resolve(load_commit(repo.path))
    assert from_git.commit == sha
    from_disk = resolve(load_worktree(EXAMPLE))
    assert {k: v.digest for k, v in from_git.configsets.items()} == {
        k: v.digest for k, v in from_disk.configsets.items()
    }


def test_resolve_refuses_invalid_snapshots() -> None:
    with pytest.raises(ResolveError) as info:
        resolve(load_worktree(ROOT / "examples" / "invalid" / "missing-policy"))
    assert [d.code for d in info.value.diagnostics] == ["missing-policy"]
