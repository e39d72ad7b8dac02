"""Agent identity against a real Center listener: pinning, join, renewal, revocation."""

from __future__ import annotations

import datetime as dt
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from konorkestra.agent.identity import (
    CenterRefused,
    CenterUnreachable,
    IdentityError,
    PinMismatch,
    join,
    load_identity,
    renew,
)
from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.errors import EXCEPTION_HANDLERS
from konorkestra.center.nodes.enrollment import EnrollmentRoutes, EnrollmentService
from konorkestra.center.nodes.jointokens import JoinTokenHasher, JoinTokenSpec
from konorkestra.center.nodes.routes import routes
from konorkestra.center.pki.ca import CertificateAuthority
from konorkestra.center.pki.identity import ClientIdentityMiddleware
from konorkestra.center.pki.selftest import make_self_test, tls_self_test_route
from konorkestra.center.pki.servercert import ensure_server_certificate
from konorkestra.center.pki.tlscontext import build_server_ssl_context
from konorkestra.center.pki.uvicornhook import CenterServer, uvicorn_config
from konorkestra.center.store import open_store
from konorkestra.center.store.engine import sqlite_url
from konorkestra.model.types import GroupName

TD = "test.konorkestra"
TRUST_ROOT = b'{"roles":{"root":{"threshold":1}},"version":1}\n'  # stored byte for byte


@dataclass
class Center:
    url: str
    svc: EnrollmentService
    ca: CertificateAuthority
    pin: str


@pytest.fixture
def center(tmp_path: Path) -> Iterator[Center]:
    ca = CertificateAuthority.load_or_create(tmp_path / "center" / "ca", trust_domain=TD)
    creds = ensure_server_certificate(ca, tmp_path / "center" / "tls", hosts=["127.0.0.1"])
    engine = open_store(sqlite_url(str(tmp_path / "center" / "center.db")))
    svc = EnrollmentService(
        engine,
        ca=ca,
        hasher=JoinTokenHasher.load_or_create(tmp_path / "center" / "enroll-hmac.key"),
    )
    ctx = CenterContext(
        engine=engine, trust_root=TRUST_ROOT, enrollment=EnrollmentRoutes(svc, creds.anchor_pem)
    )
    app_routes: list[BaseRoute] = [tls_self_test_route(), *routes(ctx)]
    app = Starlette(
        routes=app_routes,
        middleware=[Middleware(ClientIdentityMiddleware, trust_domain=TD, authorizer=svc)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.ctx = ctx
    ctx = build_server_ssl_context(creds, client_ca_pem=ca.cert_pem)
    config = uvicorn_config(app, host="127.0.0.1", port=0, ssl_context=ctx, log_level="error")
    server = CenterServer(config, self_test=make_self_test(ca, creds.anchor_pem))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.ready:
        assert server.self_test_error is None and thread.is_alive()
        assert time.monotonic() < deadline, "center did not start"
        thread.join(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Center(f"https://127.0.0.1:{port}", svc, ca, creds.pin)
    finally:
        server.should_exit = True
        thread.join(20)


def _token(center: Center) -> str:
    spec = JoinTokenSpec(groups=(GroupName("checkout"),), labels={"dc": "fra1"})
    token, _ = center.svc.create_join_token(spec, created_by="test")
    return str(token)


def test_join_stores_a_private_identity_that_authenticates(center: Center, tmp_path: Path) -> None:
    data = tmp_path / "agent"
    ident = join(center.url, _token(center), center.pin, data, name="web-1")
    assert ident.groups == ("checkout",) and dict(ident.labels) == {"dc": "fra1"}
    assert ident.name == "web-1"
    paths = ident.paths
    assert stat.S_IMODE(paths.credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.root.stat().st_mode) == 0o700
    assert paths.trust_root.read_bytes() == TRUST_ROOT
    assert load_identity(data) == ident
    # The stored credentials authenticate as this node over mTLS.
    with httpx.Client(verify=ident.ssl_context()) as client:
        seen = client.get(center.url + "/v1/tls/self-test").json()
    assert seen == {"node_id": ident.node_id}
    assert [n.id for n in center.svc.list_nodes()] == [ident.node_id]


def test_wrong_pin_refuses_before_sending_the_token(center: Center, tmp_path: Path) -> None:
    token = _token(center)
    wrong = "sha256:" + "0" * 64
    with pytest.raises(PinMismatch, match="refusing to send the token"):
        join(center.url, token, wrong, tmp_path / "agent")
    assert not (tmp_path / "agent" / "identity" / "node.json").exists()
    assert [t.status(dt.datetime.now(dt.UTC)) for t in center.svc.list_join_tokens()] == ["active"]
    assert join(center.url, token, center.pin, tmp_path / "agent").node_id


def test_a_center_whose_certificate_does_not_name_the_url_host_is_refused(
    center: Center, tmp_path: Path
) -> None:
    token = _token(center)
    other_host = center.url.replace("127.0.0.1", "localhost")
    with pytest.raises(CenterUnreachable):
        join(other_host, token, center.pin, tmp_path / "agent")
    assert center.svc.list_join_tokens()[0].used_at is None


def test_the_same_token_cannot_join_twice(center: Center, tmp_path: Path) -> None:
    token = _token(center)
    join(center.url, token, center.pin, tmp_path / "a")
    with pytest.raises(CenterRefused) as info:
        join(center.url, token, center.pin, tmp_path / "b")
    assert info.value.status == 401 and info.value.code == "join_refused"


def test_renewal_is_due_at_two_thirds_of_the_lifetime(center: Center, tmp_path: Path) -> None:
    ident = join(center.url, _token(center), center.pin, tmp_path / "agent")
    start = ident.certificate.not_valid_before_utc
    life = ident.certificate.not_valid_after_utc - start
    assert not ident.renewal_due(start + life * 0.6)
    assert ident.renewal_due(start + life * 0.67)


def test_renewal_uses_a_fresh_key_over_mtls(center: Center, tmp_path: Path) -> None:
    ident = join(center.url, _token(center), center.pin, tmp_path / "agent")
    old_pem = ident.paths.credentials.read_bytes()
    renewed = renew(ident)
    assert renewed.node_id == ident.node_id
    assert renewed.certificate.serial_number != ident.certificate.serial_number
    assert renewed.certificate.public_key() != ident.certificate.public_key()
    new_pem = renewed.paths.credentials.read_bytes()
    old_key = old_pem.split(b"-----END CERTIFICATE-----")[1]
    assert old_key not in new_pem
    assert load_identity(tmp_path / "agent").certificate == renewed.certificate
    node = center.svc.get_node(ident.node_id)
    assert node is not None and node.cert_serial == format(renewed.certificate.serial_number, "x")


def test_an_expired_certificate_cannot_renew(center: Center, tmp_path: Path) -> None:
    ident = join(center.url, _token(center), center.pin, tmp_path / "agent")
    later = ident.certificate.not_valid_after_utc + dt.timedelta(seconds=1)
    with pytest.raises(IdentityError, match="re-join"):
        renew(ident, now=later)


def test_a_revoked_node_cannot_renew(center: Center, tmp_path: Path) -> None:
    ident = join(center.url, _token(center), center.pin, tmp_path / "agent")
    assert center.svc.revoke_node(ident.node_id, by="test")
    with pytest.raises(CenterRefused) as info:
        renew(ident)
    assert info.value.status == 403


def test_join_refuses_to_overwrite_an_identity(center: Center, tmp_path: Path) -> None:
    join(center.url, _token(center), center.pin, tmp_path / "agent")
    with pytest.raises(IdentityError, match="already holds an identity"):
        join(center.url, _token(center), center.pin, tmp_path / "agent")


def test_load_identity_without_join(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="not enrolled"):
        load_identity(tmp_path)


def test_a_revoked_node_is_refused_at_once_though_its_record_was_cached(
    center: Center, tmp_path: Path
) -> None:
    ident = join(center.url, _token(center), center.pin, tmp_path / "agent")
    assert center.svc.node_allowed(ident.node_id)  # what each mTLS request asks first
    assert center.svc.node_allowed_now(ident.node_id) is True  # answered from memory now
    assert center.svc.revoke_node(ident.node_id, by="test")
    assert center.svc.node_allowed_now(ident.node_id) is None  # dropped, not served stale
    with pytest.raises(CenterRefused) as info:
        renew(ident)
    assert info.value.status == 403
