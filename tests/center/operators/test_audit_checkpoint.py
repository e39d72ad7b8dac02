"""``GET /v1/audit/checkpoint``: the audit head signed by the timestamp role (ADR 0011)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from konorkestra.center.app.datadir import Opened
from konorkestra.center.app.factory import create_app
from konorkestra.center.operators.apitokens import Role, create_api_token
from konorkestra.center.operators.checkpoint import public_repo
from konorkestra.center.store.audit import row_hash
from konorkestra.model.canonical import canonical_bytes, digest_of
from konorkestra.trust.auditchain import event_hash
from konorkestra.trust.checkpoint import GENESIS, AuditCheckpoint, verify_checkpoint
from konorkestra.trust.errors import UnknownKey
from konorkestra.trust.keys import Signer
from konorkestra.trust.root import TrustRoot
from tests.helpers.errors import assert_error
from tests.helpers.inproc import Api, make_ctx


@pytest.fixture
def signing_api(opened: Opened) -> Iterator[Api]:
    """An in-process Center wired with its timestamp key, and five audited token grants."""
    ctx = make_ctx(opened, agent_api=True, repo="https://bot:s3cret@git.example/ops/cfg.git")
    tokens = {"admin": opened.new_admin_token or ""}
    with opened.engine.begin() as conn:
        for i in range(5):
            tokens["viewer"], _ = create_api_token(
                conn, role=Role.VIEWER, name=f"v{i}", created_by="test"
            )
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield Api(client, ctx, opened, tokens)


def _checkpoint(api: Api, **params: int) -> AuditCheckpoint:
    resp = api.get("/v1/audit/checkpoint", params=params)
    assert resp.status_code == 200, resp.text
    return verify_checkpoint(
        canonical_bytes(resp.json()), TrustRoot.from_bytes(api.opened.trust_root)
    )


def test_the_head_is_signed_by_the_timestamp_role_and_names_the_center(signing_api: Api) -> None:
    events = signing_api.get("/v1/audit", params={"limit": 5000}).json()["events"]
    cp = _checkpoint(signing_api)
    assert (cp.seq, cp.hash) == (events[-1]["seq"], events[-1]["hash"])
    assert (cp.head_seq, cp.head_hash) == (cp.seq, cp.hash)
    assert cp.center.repo == "https://git.example/ops/cfg.git"  # no credentials signed
    assert cp.center.trust_root == digest_of(signing_api.opened.trust_root)


def test_a_seq_checkpoint_vouches_for_that_event_and_states_the_head(signing_api: Api) -> None:
    events = signing_api.get("/v1/audit", params={"limit": 5000}).json()["events"]
    cp = _checkpoint(signing_api, seq=2)
    assert (cp.seq, cp.hash) == (2, events[1]["hash"])
    assert cp.head_seq == events[-1]["seq"]
    assert _checkpoint(signing_api, seq=0).hash == GENESIS


def test_a_seq_past_the_head_is_404_never_signed(signing_api: Api) -> None:
    head = _checkpoint(signing_api).head_seq
    assert_error(
        signing_api.get("/v1/audit/checkpoint", params={"seq": head + 1}), 404, "not_found"
    )


def test_another_key_is_not_the_trust_roots(signing_api: Api) -> None:
    from konorkestra.trust.checkpoint import sign_checkpoint

    forged = sign_checkpoint(_checkpoint(signing_api), [Signer.generate()])
    with pytest.raises(UnknownKey):
        verify_checkpoint(forged, TrustRoot.from_bytes(signing_api.opened.trust_root))


def test_a_center_without_a_timestamp_key_answers_503(api: Api) -> None:
    assert_error(api.get("/v1/audit/checkpoint"), 503, "unavailable")


def test_viewers_need_a_token(signing_api: Api) -> None:
    assert_error(signing_api.client.get("/v1/audit/checkpoint"), 401, "unauthenticated")


def test_the_offline_hash_rule_is_the_stores(signing_api: Api) -> None:
    events = signing_api.get("/v1/audit", params={"limit": 5000}).json()["events"]
    for e in events:
        assert event_hash(e) == e["hash"]
    odd = {"seq": 9, "at": "x", "actor": "é", "action": "a", "details": {"n": [1.5, None, "ü"]},
           "prev_hash": GENESIS}  # fmt: skip
    assert event_hash(odd) == row_hash(**odd)


def test_public_repo_drops_userinfo_only() -> None:
    assert public_repo("https://u:p@h/x.git") == "https://h/x.git"
    assert public_repo("git@github.com:o/r.git") == "git@github.com:o/r.git"
    assert public_repo("/srv/repo.git") == "/srv/repo.git"
    assert json.dumps(public_repo("")) == '""'
