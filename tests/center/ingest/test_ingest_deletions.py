"""Destructive commits at the Center: real Git pushes, real enrollment, the real API.

Each test fails on the Center before destructive-commit checks: it accepted
every one of these commits silently and wrote no ``group.deleted`` event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient

from konorkestra.center.agentapi.entries import latest_rows
from konorkestra.center.app.datadir import Opened
from konorkestra.center.app.factory import create_app
from konorkestra.center.nodes.enrollment import EnrollmentService
from konorkestra.center.nodes.jointokens import JoinTokenHasher, JoinTokenSpec
from konorkestra.center.operators.apitokens import Role, create_api_token
from konorkestra.center.pki.ca import CertificateAuthority
from konorkestra.model.types import GroupName, NodeId
from tests.helpers.configrepo import seeded
from tests.helpers.git import WorkRepo, git
from tests.helpers.inproc import Api, make_ctx, with_ingest

pytestmark = pytest.mark.postgresql


@dataclass
class Rig:
    api: Api
    work: WorkRepo
    enrollment: EnrollmentService

    def hook(self) -> None:
        resp = self.api.post("/v1/hooks/git?wait=30", json={"refs": []})
        assert resp.status_code == 202, resp.text
        body = resp.json()
        assert body["done"] is True and body["ingest"]["last_error"] is None, body

    def push(self, message: str, *, remove: tuple[str, ...] = ()) -> dict[str, Any]:
        """Commit (removing ``remove``) with the ``git`` CLI, push, ingest; the commit's JSON."""
        for rel in remove:
            git(self.work.path, "rm", "-q", rel)
        sha = self.work.commit(message)
        self.work.push()
        self.hook()
        commit: dict[str, Any] = self.api.get(f"/v1/commits/{sha}").json()
        return commit

    def enroll(self, *groups: str) -> NodeId:
        token, _ = self.enrollment.create_join_token(
            JoinTokenSpec(groups=tuple(GroupName(g) for g in groups)), created_by="test"
        )
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )
        return self.enrollment.enroll(str(token), csr).node.id

    def groups(self) -> dict[str, dict[str, Any]]:
        return {g["name"]: g for g in self.api.get("/v1/groups").json()["groups"]}

    def audit(self, action: str) -> list[dict[str, Any]]:
        events = self.api.get("/v1/audit", role="admin", params={"limit": 1000}).json()
        return [e for e in events["events"] if e["action"] == action]


@pytest.fixture
def rig(opened: Opened, tmp_path: Path) -> Iterator[Rig]:
    bare, work = seeded(tmp_path)
    ctx = make_ctx(opened)
    with_ingest(ctx, opened, str(bare))
    enrollment = EnrollmentService(
        opened.engine,
        ca=CertificateAuthority.load_or_create(tmp_path / "ca", trust_domain="test.konorkestra"),
        hasher=JoinTokenHasher.load_or_create(tmp_path / "enroll-hmac.key"),
    )
    tokens = {"admin": opened.new_admin_token or ""}
    with opened.engine.begin() as conn:
        for role in (Role.VIEWER, Role.OPERATOR):
            tokens[str(role)], _ = create_api_token(
                conn, role=role, name=f"t-{role}", created_by="t"
            )
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        r = Rig(Api(client, ctx, opened, tokens), work, enrollment)
        r.hook()
        assert {g for g, v in r.groups().items() if v["defined"]} == {
            "checkout",
            "payments",
            "payments-eu",
        }
        yield r


EVERY_DEFINITION = ("configsets", "groups", "policies")


def test_a_commit_deleting_every_definition_is_rejected(rig: Rig) -> None:
    rig.enroll("payments")
    before = rig.groups()
    for folder in EVERY_DEFINITION:
        git(rig.work.path, "rm", "-q", "-r", folder)
    commit = rig.push("clean up")
    assert commit["status"] == "rejected" and commit["releases"] == []
    [every] = [d for d in commit["diagnostics"] if d["code"] == "every-group-deleted"]
    assert "every Group (3)" in every["message"] and "payments: 1 enrolled node" in every["message"]
    assert "Konorkestra-Allow-Delete: *" in every["hint"]
    # What is served does not change, and the rejection is on the audit trail.
    assert rig.groups() == before
    [rejected] = rig.audit("commit.rejected")
    assert rejected["details"]["sha"] == commit["sha"]
    assert "every-group-deleted" in rejected["details"]["first"]


def test_deleting_a_group_with_an_enrolled_node_is_rejected(rig: Rig) -> None:
    node = rig.enroll("checkout")
    rig.enroll("checkout", "payments")
    commit = rig.push("drop checkout", remove=("groups/checkout.yaml",))
    assert commit["status"] == "rejected" and commit["errors"] == 1
    [d] = commit["diagnostics"]
    assert (d["code"], d["kind"], d["name"]) == ("group-deleted", "Group", "checkout")
    assert "2 enrolled nodes" in d["message"]
    assert "Konorkestra-Allow-Delete: checkout" in d["hint"]
    assert rig.groups()["checkout"]["defined"] is True
    assert rig.audit("group.deleted") == []
    # The next commit is judged against the last accepted one: still refused...
    again = rig.push("unrelated change", remove=("groups/payments-eu.yaml",))
    assert again["status"] == "rejected"
    assert [d["name"] for d in again["diagnostics"] if d["severity"] == "error"] == ["checkout"]
    # ...and a revoked node no longer counts.
    assert rig.enrollment.revoke_node(node, by="test")
    still = rig.push("retry")
    assert "1 enrolled node" in still["diagnostics"][0]["message"]


def test_with_the_trailer_the_group_is_deleted_and_its_nodes_keep_their_last_release(
    rig: Rig,
) -> None:
    node = rig.enroll("checkout")
    last = rig.groups()["checkout"]["latest_release"]
    refused = rig.push("retire checkout", remove=("groups/checkout.yaml",))
    assert refused["status"] == "rejected"
    # A follow-up commit carrying the trailer lets the deletion through.
    commit = rig.push(
        "retire checkout, really\n\nIt moved to the new shop.\n\nKonorkestra-Allow-Delete: checkout"
    )
    assert commit["status"] == "accepted" and commit["errors"] == 0
    [warning] = commit["diagnostics"]
    assert (warning["code"], warning["severity"], warning["name"]) == (
        "group-deleted",
        "warning",
        "checkout",
    )
    assert "1 enrolled node" in warning["message"] and "last Release" in warning["message"]
    # The API says the Group is gone; its last Release stays what its nodes are offered.
    checkout = rig.groups()["checkout"]
    assert checkout["defined"] is False and checkout["latest_release"]["id"] == last["id"]
    [offered] = latest_rows(rig.api.opened.engine, ["checkout"])
    assert offered.release_id == last["id"]
    assert rig.enrollment.node_allowed(node)
    found = rig.enrollment.get_node(node)
    assert found is not None and found.groups == ("checkout",)
    # The audit trail names the Group, the commit, its author and what the nodes keep.
    [event] = rig.audit("group.deleted")
    assert event["actor"] == "center:ingest"
    details = event["details"]
    assert (details["group"], details["sha"], details["nodes"]) == ("checkout", commit["sha"], 1)
    assert details["allowed_by"] == "Konorkestra-Allow-Delete"
    assert details["author"].startswith("Ana Test")
    assert details["last_release"]["id"] == last["id"]
    # Defining the Group again resumes releases with the next sequence.
    git(rig.work.path, "checkout", "-q", refused["parent"], "--", "groups/checkout.yaml")
    restored = rig.push("bring checkout back")
    assert restored["status"] == "accepted"
    assert [(r["group"], r["sequence"]) for r in restored["releases"]] == [
        ("checkout", last["sequence"] + 1)
    ]
    assert rig.groups()["checkout"]["defined"] is True


def test_deleting_a_group_without_nodes_is_accepted_and_audited(rig: Rig) -> None:
    rig.enroll("checkout")  # another Group's node does not count
    commit = rig.push("drop payments-eu", remove=("groups/payments-eu.yaml",))
    assert commit["status"] == "accepted"
    assert [(d["name"], d["severity"]) for d in commit["diagnostics"]] == [
        ("payments-eu", "warning")
    ]
    assert rig.groups()["payments-eu"]["defined"] is False
    [event] = rig.audit("group.deleted")
    assert event["details"]["group"] == "payments-eu"
    assert event["details"]["allowed_by"] == "no enrolled node"
    # The commit's own event counts the warning stored on it, like a rejection counts errors.
    [accepted] = [e for e in rig.audit("commit.accepted") if e["details"]["sha"] == commit["sha"]]
    assert accepted["actor"] == "center:ingest"
    assert accepted["details"]["warnings"] == 1
    assert accepted["details"]["author"].startswith("Ana Test")


def test_star_allows_deleting_every_group(rig: Rig) -> None:
    rig.enroll("checkout")
    git(rig.work.path, "rm", "-q", "-r", "groups")
    commit = rig.push("decommission\n\nKonorkestra-Allow-Delete: *")
    assert commit["status"] == "accepted"
    assert not any(g["defined"] for g in rig.groups().values())
    assert sorted(e["details"]["group"] for e in rig.audit("group.deleted")) == [
        "checkout",
        "payments",
        "payments-eu",
    ]
