"""The audit page: the log newest first with filters and pages, the chain's status, the export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from konorkestra.center.store import schema
from konorkestra.center.store.audit import append_many
from konorkestra.center.store.engine import now
from konorkestra.center.ui import audit_chain, audit_view
from konorkestra.center.ui.audit_chain import INLINE_ROWS, chain_status
from konorkestra.center.ui.audit_view import PAGE_SIZE, AuditQuery
from konorkestra.cli.audit_verify import verify
from konorkestra.model.canonical import canonical_bytes
from konorkestra.trust.auditchain import ChainChecker, ExportRange
from konorkestra.trust.checkpoint import verify_checkpoint
from konorkestra.trust.root import TrustRoot
from tests.center.ui.conftest import Ui

pytestmark = pytest.mark.postgresql

EVENTS = [
    ("token:alice(a1)", "release.created", {"group": "checkout", "sequence": 1}),
    ("token:Bob(b2)", "rollout.approved", {"group": "checkout", "reason": "looks fine"}),
    ("token:alice(a1)", "node.revoked", {"node_id": "00aa00aa00aa00aa"}),
    ("center", "release.created", {"group": "payments", "sequence": 1}),
]


def _append(ui: Ui, events: list[tuple[str, str, dict[str, object]]]) -> int:
    """Append ``events``; the seq of the last event before them."""
    with ui.opened.engine.begin() as conn:
        return append_many(conn, events) - len(events)


def _rows(html: str) -> list[tuple[str, int, str]]:
    """``(action, seq, row html)`` of each table row, in page order."""
    return [
        (m.group(1), int(m.group(2)), m.group(0))
        for m in re.finditer(r'<tr data-action="([^"]+)" data-seq="(\d+)">.*?</tr>', html, re.S)
    ]


def _chain(html: str) -> str:
    found = re.search(r'<div id="chain-status"[^>]*data-ok="([a-z]+)"', html)
    assert found, html
    return found.group(1)


def test_without_a_session_the_audit_pages_send_the_browser_to_log_in(ui: Ui) -> None:
    for path in ("/ui/audit", "/ui/audit/chain", "/ui/audit/export"):
        answer = ui.client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")


def test_the_log_is_listed_newest_first_with_actors_and_a_sound_chain(ui: Ui) -> None:
    base = _append(ui, EVENTS)
    ui.login("viewer")
    page = ui.client.get("/ui/audit")
    assert page.status_code == 200
    rows = _rows(page.text)
    seqs = [seq for _, seq, _ in rows]
    assert seqs == list(range(base + len(EVENTS) + 1, 0, -1))  # the tokens' events, ours, login
    assert rows[0][0] == "session.opened" and "token:ui-viewer(" in rows[0][2]
    revoked = next(html for action, _, html in rows if action == "node.revoked")
    assert '<td class="actor">token:alice(a1)</td>' in revoked
    assert 'href="/ui/nodes/00aa00aa00aa00aa"' in revoked and "<time" in revoked
    assert _chain(page.text) == "true"
    assert re.search(r'<a id="audit-export" href="/ui/audit/export', page.text)
    assert 'id="audit-live"' in page.text and 'hx-trigger="sse:changed"' in page.text


def test_filters_narrow_the_log_and_bad_ones_are_refused(ui: Ui) -> None:
    base = _append(ui, EVENTS)
    ui.login("viewer")

    def actions(query: str) -> list[str]:
        answer = ui.client.get(f"/ui/audit?{query}")
        assert answer.status_code == 200, answer.text
        return [action for action, _, _ in _rows(answer.text)]

    assert actions("action=release.created") == ["release.created"] * 2
    assert actions("action=release.*") == ["release.created"] * 2
    assert actions("action=rollout.*") == ["rollout.approved"]
    assert actions("actor=ALICE") == ["node.revoked", "release.created"]
    assert actions("actor=bob") == ["rollout.approved"]
    assert actions("group=checkout") == ["rollout.approved", "release.created"]
    assert actions("group=checkout&action=release.created") == ["release.created"]
    assert actions(f"since={base + 2}&action=release.*") == ["release.created"]
    assert actions(f"since={base + 2}")[1:] == ["release.created", "node.revoked"]
    assert actions("actor=%25") == []  # a LIKE wildcard is a plain character
    for bad in ("action=Not+An+Action", "action=x;drop", "since=-1", "since=x", "before=0",
                "group=Checkout", "actor=" + "a" * 201):  # fmt: skip
        answer = ui.client.get(f"/ui/audit?{bad}")
        assert answer.status_code == 400, bad
        assert answer.headers["content-type"].startswith("text/html")


def test_older_events_are_a_link_away_page_by_page(ui: Ui) -> None:
    base = _append(ui, [("center", "commit.accepted", {"n": i}) for i in range(PAGE_SIZE * 2)])
    ui.login("viewer")
    seen: list[int] = []
    link: str | None = "/ui/audit?action=commit.accepted"
    while link is not None:
        page = ui.client.get(link.replace("&amp;", "&"))
        seen += [seq for _, seq, _ in _rows(page.text)]
        older = re.search(r'<a href="([^"]+)" rel="next">Older events</a>', page.text)
        link = older.group(1) if older else None
    assert seen == list(range(base + PAGE_SIZE * 2, base, -1))
    assert AuditQuery(action="node.*").link(before=7) == "/ui/audit?action=node.%2A&before=7"


def test_a_filtered_page_reads_a_bounded_window_and_links_to_older_ones(
    ui: Ui, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_view, "SCAN_ROWS", 10)
    rare = ("token:alice(a1)", "node.revoked", {"node_id": "00aa00aa00aa00aa"})
    base = _append(ui, [rare, *[("center", "commit.accepted", {"n": i}) for i in range(30)]])
    ui.login("viewer")
    link: str | None = "/ui/audit?action=node.revoked"
    found: list[int] = []
    pages = 0
    while link is not None:
        page = ui.client.get(link.replace("&amp;", "&"))
        pages += 1
        found += [seq for _, seq, _ in _rows(page.text)]
        if not found:
            assert "This page searched events" in page.text
        older = re.search(r'<a href="([^"]+)" rel="next">Older events</a>', page.text)
        link = older.group(1) if older else None
    assert found == [base + 1] and pages == 4  # 32 events, 10 a page: 4 windows


def test_a_broken_chain_shows_once_verified_again(ui: Ui) -> None:
    base = _append(ui, EVENTS)
    ui.login("viewer")
    assert _chain(ui.client.get("/ui/audit").text) == "true"
    edited = base + 2
    with ui.opened.engine.begin() as conn:
        conn.execute(
            sa.update(schema.audit).where(schema.audit.c.seq == edited).values(actor="mallory")
        )
    full = ui.client.get("/ui/audit/chain?full=1")
    assert full.status_code == 200 and _chain(full.text) == "false"
    assert f"Event {edited}:" in full.text
    assert _chain(ui.client.get("/ui/audit").text) == "false"  # broken stays broken


def test_a_long_log_is_verified_on_a_second_request_then_kept(ui: Ui) -> None:
    base = _append(ui, [("center", "commit.accepted", {"n": i}) for i in range(INLINE_ROWS + 10)])
    ui.login("viewer")
    page = ui.client.get("/ui/audit")
    assert _chain(page.text) == "pending"
    assert 'hx-get="/ui/audit/chain" hx-trigger="load"' in page.text
    status = ui.client.get("/ui/audit/chain", headers={"HX-Request": "true"})
    assert _chain(status.text) == "true" and "<html" not in status.text
    _append(ui, EVENTS)  # a few more: verified inline, chained onto the kept head
    again = ui.client.get("/ui/audit").text
    assert _chain(again) == "true"
    assert f'data-head="{base + INLINE_ROWS + 10 + 1 + len(EVENTS)}"' in again


def test_the_export_downloads_what_konorctl_audit_verify_accepts(ui: Ui, tmp_path: Path) -> None:
    base = _append(ui, EVENTS)
    ui.login("viewer")
    total = base + len(EVENTS) + 1
    answer = ui.client.get("/ui/audit/export")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith("attachment; filename=")
    lines = answer.content.decode().splitlines()
    head, *events, last = (json.loads(line) for line in lines)
    assert head == {"export": {"since": None, "until": None, "first_seq": 1,
                               "first_prev_hash": events[0]["prev_hash"]}}  # fmt: skip
    assert [e["seq"] for e in events] == list(range(1, total + 1))
    # The offline judge, on the downloaded bytes: every hash, the chain, the checkpoint.
    root = TrustRoot.from_bytes(ui.opened.trust_root)
    checkpoint = verify_checkpoint(canonical_bytes(last["checkpoint"]), root)
    check = ChainChecker(ExportRange.from_json(head["export"]))
    for number, event in enumerate(events, start=2):
        check.add(event, line=number)
    check.finish(checkpoint)
    assert check.count == total
    # And the command itself, as an auditor runs it.
    (tmp_path / "root.json").write_bytes(ui.opened.trust_root)
    (tmp_path / "audit.jsonl").write_bytes(answer.content)
    ran = CliRunner().invoke(
        verify, [str(tmp_path / "audit.jsonl"), "--trust-root", str(tmp_path / "root.json")]
    )
    assert ran.exit_code == 0, ran.output
    assert f"{total} events (1-{total})" in ran.output
    tampered = answer.content.replace(b"token:Bob(b2)", b"token:Eve(b2)")
    (tmp_path / "tampered.jsonl").write_bytes(tampered)
    refused = CliRunner().invoke(
        verify, [str(tmp_path / "tampered.jsonl"), "--trust-root", str(tmp_path / "root.json")]
    )
    assert refused.exit_code == 1 and f"event {base + 2} " in refused.output


def test_a_page_never_waits_for_a_verification_already_running(ui: Ui) -> None:
    engine = ui.opened.engine
    first = chain_status(engine, now())
    assert first is not None and first.result.ok
    with audit_chain._running[engine]:  # another request is verifying
        assert chain_status(engine, now(), budget=10) is first  # still current: shown
        _append(ui, EVENTS)
        assert chain_status(engine, now(), budget=10) is None  # not waited for: pending
    later = chain_status(engine, now(), budget=10)
    assert later is not None and later.result.ok and later.full_at == first.full_at
