"""The nodes pages: the fleet list with filters, a node's who-saw-what, revoking by admins."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from konorkestra.center.agentapi.reportrows import store_reports
from konorkestra.center.agentapi.reports import parse_report
from konorkestra.center.app.context import CenterContext
from konorkestra.center.nodes.enrollment import EnrollmentRoutes, EnrollmentService
from konorkestra.center.nodes.fold import Committed, GroupState
from konorkestra.center.nodes.jointokens import JoinTokenHasher, JoinTokenSpec
from konorkestra.center.pki.ca import CertificateAuthority
from konorkestra.center.store import schema
from konorkestra.center.ui.nodes_view import Clock, NodeQuery, cert_warns, freshness
from konorkestra.model.types import GroupName, NodeId, ReleaseId
from tests.center.ui.conftest import Ui

pytestmark = pytest.mark.postgresql

D = "sha256:" + "a" * 64
REL = "checkout-2-0123456789abcdef"
WEB = {"pid": 42, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app", "start_time": 7}
WORKER = {"pid": 43, "uid": 1001, "gid": 1000, "exe": "/usr/bin/worker", "start_time": 9}


@dataclass
class Fleet:
    ui: Ui
    svc: EnrollmentService
    web: NodeId
    db: NodeId


def _csr() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


def _enroll(svc: EnrollmentService, name: str, groups: tuple[str, ...], **labels: str) -> NodeId:
    spec = JoinTokenSpec(groups=tuple(GroupName(g) for g in groups), labels=labels)
    token, _ = svc.create_join_token(spec, created_by="test")
    return svc.enroll(str(token), _csr(), requested_name=name).node.id


def _event(kind: str, proc: dict[str, object], at: float, **extra: object) -> dict[str, object]:
    return {"kind": kind, "at": at, "group": "checkout", "process": proc, "client": "web",
            "release": REL, **extra}  # fmt: skip


@pytest.fixture
def fleet(ui: Ui, tmp_path: Path) -> Iterator[Fleet]:
    engine = ui.opened.engine
    ca = CertificateAuthority.load_or_create(tmp_path / "ca", trust_domain="test.konorkestra")
    svc = EnrollmentService(engine, ca=ca, hasher=JoinTokenHasher(b"k" * 32))
    ctx: CenterContext = ui.client.app.state.ctx  # type: ignore[attr-defined]
    ctx.enrollment = EnrollmentRoutes(svc, ca.cert_pem)
    web = _enroll(svc, "web-1", ("checkout",), dc="fra1")
    db = _enroll(svc, "db-1", ("payments",), dc="ams2")
    body = {
        "applied": [{"group": "checkout", "release": REL, "sequence": 2, "digest": D, "at": 1.0}],
        "events": [
            _event("delivery", WEB, 2.0, sequence=2, via="watch"),
            _event("delivery", WORKER, 2.5, sequence=2, via="get"),
            _event("ack", WEB, 3.0, status="applied"),
            _event("ack", WORKER, 4.0, status="failed", error="KeyError: currency"),
        ],
    }
    store_reports(engine, [(web, parse_report(body))])
    yield Fleet(ui, svc, web, db)
    ctx.enrollment = None


def test_without_a_session_the_nodes_pages_send_the_browser_to_log_in(fleet: Fleet) -> None:
    for path in ("/ui/nodes", f"/ui/nodes/{fleet.web}"):
        answer = fleet.ui.client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")


def test_the_list_shows_each_node_with_groups_release_labels_and_last_seen(fleet: Fleet) -> None:
    fleet.ui.login("viewer")
    page = fleet.ui.client.get("/ui/nodes")
    assert page.status_code == 200
    rows = _rows(page.text)
    assert set(rows) == {fleet.web, fleet.db}
    web = rows[fleet.web]
    assert f'href="/ui/nodes/{fleet.web}"' in web and "web-1" in web
    assert 'data-group="checkout"' in web and REL in web
    assert 'data-freshness="current"' in web  # no Release in the store: nothing newer to take
    assert "dc=fra1" in web
    last_seen = re.findall(r'<time datetime="([^"]*)"', web)
    assert last_seen[0]  # reported, so seen (the certificate's expiry is the second time)
    assert "never" not in web.split("<td>")[-2]
    assert 'data-group="payments"' in rows[fleet.db] and "nothing applied" in rows[fleet.db]
    assert 'id="nodes-live"' in page.text and 'hx-trigger="sse:changed"' in page.text
    assert "renew soon" not in page.text
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)  # 24 h certificates, renewed at 16
    with fleet.ui.opened.engine.begin() as conn:
        conn.execute(
            sa.update(schema.nodes).where(schema.nodes.c.id == fleet.db).values(cert_not_after=soon)
        )
    rows = _rows(fleet.ui.client.get("/ui/nodes").text)
    assert "renew soon" in rows[fleet.db] and "renew soon" not in rows[fleet.web]


def test_the_list_filters_by_group_and_text_and_refuses_bad_filters(fleet: Fleet) -> None:
    fleet.ui.login("viewer")
    assert set(_rows(fleet.ui.client.get("/ui/nodes?group=payments").text)) == {fleet.db}
    assert set(_rows(fleet.ui.client.get("/ui/nodes?q=FRA1").text)) == {fleet.web}
    assert set(_rows(fleet.ui.client.get("/ui/nodes?q=db-").text)) == {fleet.db}
    assert _rows(fleet.ui.client.get("/ui/nodes?group=search").text) == {}
    for bad in ("group=Not%20A%20Group", "page=0", "page=x", "q=" + "a" * 201):
        answer = fleet.ui.client.get(f"/ui/nodes?{bad}")
        assert answer.status_code == 400, bad
        assert answer.headers["content-type"].startswith("text/html")


def test_the_node_page_shows_each_process_with_what_it_was_served_and_acked(
    fleet: Fleet,
) -> None:
    fleet.ui.login("viewer")
    page = fleet.ui.client.get(f"/ui/nodes/{fleet.web}")
    assert page.status_code == 200
    assert re.search(r"<h1>Node web-1 ", page.text)
    procs = {
        m.group(1): m.group(0)
        for m in re.finditer(r'<tr data-pid="(\d+)".*?</tr>', page.text, re.S)
    }
    assert set(procs) == {"42", "43"}
    assert "/usr/bin/app" in procs["42"] and 'data-ack="applied"' in procs["42"]
    assert REL in procs["42"] and "via watch" in procs["42"] and ">1000<" in procs["42"]
    assert 'data-ack="failed"' in procs["43"] and "KeyError: currency" in procs["43"]
    assert "via get" in procs["43"] and "<time" in procs["43"]
    assert 'id="node-live"' in page.text
    assert "/revoke" not in page.text  # a viewer sees no revoke form
    # The same process asking for a second Group's config is still one row, with both.
    search = {**_event("delivery", WEB, 5.0, sequence=1, via="watch"), "group": "search",
              "release": "search-1-0123456789abcdef"}  # fmt: skip
    failed = {**_event("ack", WEB, 6.0, status="failed", error="bad"), "group": "search",
              "release": "search-1-0123456789abcdef"}  # fmt: skip
    store_reports(fleet.ui.opened.engine, [(fleet.web, parse_report({"events": [search, failed]}))])
    page = fleet.ui.client.get(f"/ui/nodes/{fleet.web}")
    [web] = re.findall(r'<tr data-pid="42".*?</tr>', page.text, re.S)
    assert 'data-group="checkout"' in web and 'data-group="search"' in web
    assert 'data-ack="failed"' in web.split(">", 1)[0]  # one Group's reload failed
    missing = fleet.ui.client.get("/ui/nodes/0000000000000000")
    assert missing.status_code == 404 and "No node" in missing.text


def test_an_admin_revokes_a_node_through_the_form_audited_as_the_api_does(fleet: Fleet) -> None:
    csrf = fleet.ui.login("admin")
    page = fleet.ui.client.get(f"/ui/nodes/{fleet.db}")
    form = re.search(r'<form class="actions revoke"[^>]*>', page.text)
    assert form and "data-confirm=" in form.group(0)
    assert f'action="/ui/nodes/{fleet.db}/revoke"' in form.group(0)
    answer = fleet.ui.client.post(
        f"/ui/nodes/{fleet.db}/revoke",
        data={"csrf": csrf, "reason": "disk stolen"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"/ui/nodes/{fleet.db}?notice=")
    assert fleet.svc.authorized(fleet.db) is None  # its next request is refused
    actor, details = _last(fleet, "node.revoked")
    assert details == {"node_id": fleet.db, "reason": "disk stolen"}
    assert actor == _last(fleet, "session.opened")[0] and actor.startswith("token:")
    after = fleet.ui.client.get(answer.headers["location"])
    assert 'data-status="revoked"' in after.text and "revoke" not in _forms(after.text)
    assert 'data-node="' + fleet.db in fleet.ui.client.get("/ui/nodes").text
    again = fleet.ui.client.post(
        f"/ui/nodes/{fleet.db}/revoke", data={"csrf": csrf}, follow_redirects=False
    )
    assert again.status_code == 303 and "already" in again.headers["location"]
    gone = fleet.ui.client.post("/ui/nodes/nope/revoke", data={"csrf": csrf})
    assert gone.status_code == 404


def test_an_operator_sees_no_revoke_form_and_a_forged_post_is_refused(fleet: Fleet) -> None:
    csrf = fleet.ui.login("operator")
    page = fleet.ui.client.get(f"/ui/nodes/{fleet.web}")
    assert page.status_code == 200 and "/revoke" not in page.text
    forged = fleet.ui.client.post(
        f"/ui/nodes/{fleet.web}/revoke", data={"csrf": csrf, "reason": "x"}
    )
    assert forged.status_code == 403
    assert fleet.svc.authorized(fleet.web) is not None
    with fleet.ui.opened.engine.connect() as conn:
        revoked = conn.execute(
            sa.select(sa.func.count()).where(schema.audit.c.action == "node.revoked")
        ).scalar()
    assert revoked == 0


def test_the_list_reads_the_store_a_fixed_number_of_times_whatever_the_fleet(
    fleet: Fleet,
) -> None:
    fleet.ui.login("viewer")

    def queries() -> int:
        seen: list[str] = []

        def count(*args: object) -> None:
            seen.append(str(args[2]))

        engine = fleet.ui.opened.engine
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            assert fleet.ui.client.get("/ui/nodes").status_code == 200
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        return len([s for s in seen if "node" in s or "release" in s or "rollout" in s])

    few = queries()
    now = dt.datetime.now(dt.UTC)
    with fleet.ui.opened.engine.begin() as conn:
        conn.execute(
            sa.insert(schema.nodes),
            [
                {
                    "id": f"{i:016x}",
                    "name": f"n{i}",
                    "groups": ["checkout"],
                    "labels": {},
                    "created_at": now,
                }
                for i in range(60)
            ],
        )
    assert queries() == few


def test_freshness_and_certificate_rules() -> None:
    g, rel, other = GroupName("checkout"), ReleaseId(REL), ReleaseId("checkout-3-x")
    held = GroupState(g, applied=Committed(rel, 2, None))
    assert freshness(held, rel) == "current"
    assert freshness(held, other) == "behind"
    assert freshness(GroupState(g), other) == "behind"
    assert freshness(GroupState(g), None) == "current"
    assert freshness(GroupState(g, applied=Committed(rel, 2, None), stale=True), rel) == "stale"
    now = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    yearly = Clock(now, dt.timedelta(days=365))
    assert cert_warns(now + dt.timedelta(days=6), yearly)
    assert not cert_warns(now + dt.timedelta(days=8), yearly) and not cert_warns(None, yearly)
    daily = Clock(now, dt.timedelta(hours=24))  # renewed at 16 h: warn past the renewal point
    assert not cert_warns(now + dt.timedelta(hours=9), daily)
    assert cert_warns(now + dt.timedelta(hours=7), daily)
    assert cert_warns(now - dt.timedelta(hours=1), daily)
    assert NodeQuery.parse({"group": "checkout", "page": "3"}).link(4) == (
        "/ui/nodes?group=checkout&page=4"
    )


def _rows(html: str) -> dict[str, str]:
    return {
        m.group(1): m.group(0) for m in re.finditer(r'<tr data-node="([^"]+)".*?</tr>', html, re.S)
    }


def _forms(html: str) -> str:
    return " ".join(re.findall(r"<form[^>]*>", html))


def _last(fleet: Fleet, action: str) -> tuple[str, dict[str, object]]:
    a = schema.audit
    with fleet.ui.opened.engine.connect() as conn:
        row = conn.execute(
            sa.select(a.c.actor, a.c.details)
            .where(a.c.action == action)
            .order_by(a.c.seq.desc())
            .limit(1)
        ).one()
    return str(row.actor), dict(row.details)
