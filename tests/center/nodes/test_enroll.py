"""Join tokens, enrollment, renewal and revocation against a real SQLite store."""

from __future__ import annotations

import datetime as dt
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from konorkestra.center.nodes.enrollment import EnrollmentService
from konorkestra.center.nodes.jointokens import (
    JOIN_TOKEN_REFUSED,
    InvalidJoinTokenSpec,
    JoinToken,
    JoinTokenHasher,
    JoinTokenSpec,
    RateLimited,
    RateLimiter,
)
from konorkestra.center.nodes.records import EnrollmentError, EnrollmentRefused, NodeNotAllowed
from konorkestra.center.pki.ca import CertificateAuthority
from konorkestra.center.pki.certs import CSRRejected, spki_pin_of_key
from konorkestra.center.store import open_store, schema
from konorkestra.center.store.audit import verify_chain
from konorkestra.model.types import GroupName, NodeId
from tests.helpers.concurrent import at_once

pytestmark = pytest.mark.postgresql

TD = "test.konorkestra"


@dataclass
class Clock:
    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Env:
    svc: EnrollmentService
    engine: sa.Engine
    audit: sa.Table
    clock: Clock

    def audit_actions(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r.action for r in conn.execute(sa.select(self.audit).order_by("seq"))]


@pytest.fixture
def env(tmp_path: Path, store_url: str) -> Env:
    engine = open_store(store_url)
    clock = Clock(dt.datetime.now(dt.UTC))
    svc = EnrollmentService(
        engine,
        ca=CertificateAuthority.load_or_create(tmp_path / "ca", trust_domain=TD),
        hasher=JoinTokenHasher.load_or_create(tmp_path / "enroll-hmac.key"),
        clock=clock,
    )
    return Env(svc, engine, schema.audit, clock)


def csr(key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


SPEC = JoinTokenSpec(groups=(GroupName("checkout"), GroupName("payments")), labels={"dc": "fra1"})


def test_token_format_and_entropy() -> None:
    token = JoinToken.generate()
    assert 6 <= len(token.id) <= 12 and token.id.isalnum()
    assert len(token.secret) >= 22  # >= 128 bits of URL-safe base64
    assert JoinToken.parse(str(token)) == token
    assert token.secret not in repr(token)


def test_only_an_hmac_is_stored_and_the_key_is_private(env: Env, tmp_path: Path) -> None:
    token, record = env.svc.create_join_token(SPEC, created_by="alice")
    with env.engine.connect() as conn:
        dump = repr(conn.execute(sa.select(env.svc.join_tokens)).all())
    assert token.secret not in dump
    assert record.groups == SPEC.groups and record.status(env.clock.now) == "active"
    assert stat.S_IMODE((tmp_path / "enroll-hmac.key").stat().st_mode) == 0o600


def test_enroll_issues_a_certificate_with_the_token_scope(env: Env) -> None:
    token, _ = env.svc.create_join_token(SPEC, created_by="alice")
    enrolled = env.svc.enroll(str(token), csr(), requested_name="web-1", source="127.0.0.1")
    assert enrolled.node.name == "web-1"
    assert enrolled.node.groups == SPEC.groups
    assert enrolled.node.labels == {"dc": "fra1"}
    cert = x509.load_pem_x509_certificate(enrolled.certificate.cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uri = san.get_values_for_type(x509.UniformResourceIdentifier)
    assert uri == [f"spiffe://{TD}/node/{enrolled.node.id}"]
    assert env.svc.node_allowed(enrolled.node.id)
    assert env.svc.list_join_tokens()[0].status(env.clock.now) == "used"
    assert env.audit_actions() == ["join_token.created", "node.enrolled"]
    assert verify_chain(env.engine).ok


def test_token_is_single_use(env: Env) -> None:
    token, _ = env.svc.create_join_token(SPEC, created_by="alice")
    env.svc.enroll(str(token), csr())
    with pytest.raises(EnrollmentRefused) as info:
        env.svc.enroll(str(token), csr())
    assert str(info.value) == JOIN_TOKEN_REFUSED
    assert len(env.svc.list_nodes()) == 1


def test_concurrent_joins_with_one_token_exactly_one_wins(env: Env) -> None:
    token, _ = env.svc.create_join_token(SPEC, created_by="alice")
    requests = [csr() for _ in range(8)]

    def join(request: bytes) -> str:
        try:
            env.svc.enroll(str(token), request)
            return "ok"
        except EnrollmentRefused as exc:
            return str(exc)

    outcomes = at_once(join, [(r,) for r in requests])  # a store error stays an exception
    assert outcomes.count("ok") == 1
    assert outcomes.count(JOIN_TOKEN_REFUSED) == 7
    assert len(env.svc.list_nodes()) == 1


@pytest.mark.parametrize("case", ["expired", "wrong_secret", "unknown_id", "malformed", "revoked"])
def test_every_bad_token_fails_with_the_same_message(env: Env, case: str) -> None:
    token, _ = env.svc.create_join_token(SPEC, created_by="alice")
    text = str(token)
    if case == "expired":
        env.clock.now += dt.timedelta(minutes=16)
    elif case == "wrong_secret":
        text = f"{token.id}.{JoinToken.generate().secret}"
    elif case == "unknown_id":
        text = f"zzzzzzzz.{token.secret}"
    elif case == "malformed":
        text = "not-a-token"
    elif case == "revoked":
        assert env.svc.revoke_join_token(token.id, by="alice")
    with pytest.raises(EnrollmentRefused) as info:
        env.svc.enroll(text, csr())
    assert str(info.value) == JOIN_TOKEN_REFUSED
    assert env.svc.list_nodes() == []
    assert env.audit_actions()[-1] == "node.enroll_refused"
    # A refused attempt never consumes the token (unless it was already dead).
    if case in ("wrong_secret", "unknown_id", "malformed"):
        assert env.svc.enroll(text if case == "expired" else str(token), csr())


def test_token_bound_to_a_node_name(env: Env) -> None:
    spec = JoinTokenSpec(groups=(GroupName("checkout"),), node_name="web-7")
    token, _ = env.svc.create_join_token(spec, created_by="alice")
    with pytest.raises(EnrollmentRefused, match="invalid, expired"):
        env.svc.enroll(str(token), csr(), requested_name="web-8")
    assert env.svc.enroll(str(token), csr()).node.name == "web-7"


def test_bad_csr_does_not_burn_the_token(env: Env) -> None:
    token, _ = env.svc.create_join_token(SPEC, created_by="alice")
    with pytest.raises(CSRRejected):
        env.svc.enroll(str(token), b"garbage")
    assert env.svc.enroll(str(token), csr())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (JoinTokenSpec(groups=()), "at least one group"),
        (JoinTokenSpec(groups=(GroupName("Bad Group"),)), "invalid group"),
        (JoinTokenSpec(groups=(GroupName("a"),), ttl=dt.timedelta(days=2)), "TTL"),
        (JoinTokenSpec(groups=(GroupName("a"),), labels={"k": "v w"}), "invalid label"),
    ],
)
def test_invalid_token_specs_are_refused(env: Env, spec: JoinTokenSpec, message: str) -> None:
    with pytest.raises(InvalidJoinTokenSpec, match=message):
        env.svc.create_join_token(spec, created_by="alice")


def test_revoking_a_node_denies_it_at_once_and_blocks_renewal(env: Env) -> None:
    token, _ = env.svc.create_join_token(SPEC, created_by="alice")
    key = ec.generate_private_key(ec.SECP256R1())
    node = env.svc.enroll(str(token), csr(key)).node
    assert env.svc.node_allowed(node.id)
    assert env.svc.revoke_node(node.id, by="alice")
    assert not env.svc.node_allowed(node.id)
    assert not env.svc.revoke_node(node.id, by="alice")
    assert env.svc.get_node(node.id).revoked_at is not None  # type: ignore[union-attr]
    with pytest.raises(NodeNotAllowed):
        env.svc.renew(node.id, csr(), presented_key_pin=spki_pin_of_key(key.public_key()))
    assert not env.svc.node_allowed(NodeId("ffffffffffffffff"))
    assert env.audit_actions()[-1] == "node.revoked"


def test_renewal_needs_a_fresh_key(env: Env) -> None:
    token, _ = env.svc.create_join_token(SPEC, created_by="alice")
    key = ec.generate_private_key(ec.SECP256R1())
    enrolled = env.svc.enroll(str(token), csr(key))
    pin = spki_pin_of_key(key.public_key())
    with pytest.raises(EnrollmentError, match="fresh key"):
        env.svc.renew(enrolled.node.id, csr(key), presented_key_pin=pin)
    env.clock.now += dt.timedelta(hours=16)
    renewed = env.svc.renew(enrolled.node.id, csr(), presented_key_pin=pin)
    assert renewed.not_after > enrolled.certificate.not_after
    node = env.svc.get_node(enrolled.node.id)
    assert node is not None and node.cert_serial == format(renewed.serial, "x")


def test_revoking_a_used_token_is_a_no_op(env: Env) -> None:
    token, _ = env.svc.create_join_token(SPEC, created_by="alice")
    env.svc.enroll(str(token), csr())
    assert not env.svc.revoke_join_token(token.id, by="alice")
    assert not env.svc.revoke_join_token("nosuchid", by="alice")


def test_rate_limiter_per_source() -> None:
    now = [0.0]
    limiter = RateLimiter(burst=3, interval=10.0, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("10.0.0.1")
    with pytest.raises(RateLimited) as info:
        limiter.check("10.0.0.1")
    assert info.value.retry_after == pytest.approx(10.0)
    limiter.check("10.0.0.2")  # another source is unaffected
    now[0] += 10.0
    limiter.check("10.0.0.1")  # refilled one
    with pytest.raises(RateLimited):
        limiter.check("10.0.0.1")


def test_rate_limiter_bounds_its_memory() -> None:
    limiter = RateLimiter(burst=1, interval=60.0, max_sources=2, clock=lambda: 0.0)
    limiter.check("a")
    limiter.check("b")
    limiter.check("c")  # evicts "a"
    limiter.check("a")  # "a" was forgotten, so it starts with a full bucket
    with pytest.raises(RateLimited):
        limiter.check("c")


def test_enrolment_renewal_and_revocation_are_audited_with_their_actors(env: Env) -> None:
    """An auditor can tell who let each node in (the join token's creator, by token id),
    which certificate it holds after each renewal, and which operator revoked it."""
    token, _ = env.svc.create_join_token(SPEC, created_by="alice")
    key = ec.generate_private_key(ec.SECP256R1())
    enrolled = env.svc.enroll(str(token), csr(key), source="127.0.0.1")
    node_id = enrolled.node.id
    env.clock.now += dt.timedelta(hours=16)
    renewed = env.svc.renew(node_id, csr(), presented_key_pin=spki_pin_of_key(key.public_key()))
    assert env.svc.revoke_node(node_id, by="bob")
    with env.engine.connect() as conn:
        rows = conn.execute(sa.select(env.audit).order_by(env.audit.c.seq)).all()
    events = [(r.actor, r.action, r.details) for r in rows]
    assert events == [
        ("alice", "join_token.created", events[0][2]),
        (f"node:{node_id}", "node.enrolled",
         {"node_id": node_id, "token_id": token.id,
          "serial": format(enrolled.certificate.serial, "x")}),
        (f"node:{node_id}", "node.renewed",
         {"node_id": node_id, "serial": format(renewed.serial, "x")}),
        ("bob", "node.revoked", {"node_id": node_id}),
    ]  # fmt: skip
    assert events[0][2]["token_id"] == token.id
    assert renewed.serial != enrolled.certificate.serial
    assert verify_chain(env.engine).ok
