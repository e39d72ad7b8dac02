"""The Release pages: what was signed, what changed, by whom, and how far it has reached.

Commits and Releases are made by the real ingest of a real Git repo (the example
config repo, :func:`tests.helpers.configrepo.seeded`); nodes report through the
real report path.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from konorkestra.center.agentapi.reportrows import store_reports
from konorkestra.center.agentapi.reports import parse_report
from konorkestra.center.app.metrics import CenterMetrics
from konorkestra.center.ingest import build_ingest
from konorkestra.center.releases.signer import Releaser
from konorkestra.center.store import audit, schema
from konorkestra.center.store.engine import now
from konorkestra.center.ui.release_data import ConvergenceCache, load_release
from tests.center.ui.conftest import Ui
from tests.helpers.configrepo import seeded
from tests.helpers.git import EXAMPLES, WorkRepo

D = "sha256:" + "a" * 64


class Ingested:
    """A real config repo pushed to a bare repo and ingested into the ``ui`` Center."""

    def __init__(self, ui: Ui, tmp: Path) -> None:
        self.ui = ui
        bare, self.work = seeded(tmp)
        releaser = Releaser([ui.opened.signers["release"]], source_repo="config.git")
        self.keyid = ui.opened.signers["release"].keyid
        self.service = build_ingest(
            ui.opened.engine, releaser, CenterMetrics(), repo=str(bare), branch="main",
            mirror=ui.opened.data.mirror, watch=False,
        )  # fmt: skip
        self.ingest()

    @property
    def repo(self) -> WorkRepo:
        return self.work

    def ingest(self) -> None:
        self.service.run_once()
        assert self.service.status()["last_error"] is None, self.service.status()

    def push(self, message: str, files: dict[str, str]) -> str:
        for rel, text in files.items():
            self.work.write(rel, text)
        sha = self.work.commit(message)
        self.work.push()
        self.ingest()
        return sha

    def releases(self, group: str) -> list[Any]:
        with self.ui.opened.engine.connect() as conn:
            q = sa.select(schema.releases).where(schema.releases.c.group == group)
            return sorted(conn.execute(q), key=lambda r: r.sequence)


def payments_v2() -> dict[str, str]:
    """payments-common version 2 of the example repo: the default currency becomes USD."""
    text = (EXAMPLES / "config-repo/configsets/payments-common.yaml").read_text()
    text = text.replace("version: 1", "version: 2").replace(
        "currency_default: EUR", "currency_default: USD"
    )
    return {"configsets/payments-common.yaml": text}


def enroll(ui: Ui, *nodes: tuple[str, list[str]]) -> None:
    with ui.opened.engine.begin() as conn:
        for name, groups in nodes:
            conn.execute(sa.insert(schema.nodes).values(
                id=name, name=name, groups=groups, labels={}, created_at=now()
            ))  # fmt: skip


def report(ui: Ui, node: str, group: str, release: Any, acks: list[tuple[int, str]]) -> None:
    events: list[dict[str, Any]] = []
    for pid, status in acks:
        proc = {"pid": pid, "uid": 1000, "gid": 1000, "exe": "/usr/bin/app", "start_time": 1}
        common = {"group": group, "process": proc, "client": "web", "release": release.id}
        events.append({"kind": "delivery", "at": 3.0, **common, "sequence": release.sequence,
                       "via": "watch"})  # fmt: skip
        events.append({"kind": "ack", "at": 4.0, **common, "status": status, "error": None})
    body = {"applied": [{"group": group, "release": release.id, "sequence": release.sequence,
                         "digest": D, "at": 1.0}], "events": events}  # fmt: skip
    store_reports(ui.opened.engine, [(node, parse_report(body))])


@pytest.fixture
def repo(ui: Ui, tmp_path: Path) -> Ingested:
    return Ingested(ui, tmp_path)


def row_of(page: str, key: str, attribute: str = "data-node") -> str:
    """The table row ``<tr {attribute}="{key}" ...>...</tr>`` of ``page``."""
    found = re.search(rf'<tr {attribute}="{key}"[^>]*>.*?</tr>', page, re.S)
    assert found, f"no row for {key}"
    return found.group(0)


def test_a_release_page_shows_configsets_diff_keys_author_and_convergence(
    ui: Ui, repo: Ingested
) -> None:
    sha = repo.push("payments in USD", payments_v2())
    first, second = repo.releases("payments")
    enroll(ui, ("n1", ["payments"]), ("n2", ["payments"]), ("n3", ["payments"]), ("x", ["other"]))
    report(ui, "n1", "payments", second, [(10, "applied")])
    report(ui, "n2", "payments", second, [(20, "failed")])
    report(ui, "n3", "payments", first, [(30, "applied")])
    ui.login("viewer")

    page = ui.client.get(f"/ui/releases/{second.id}")
    assert page.status_code == 200, page.text
    text = page.text
    assert f'<h1>Release <span class="mono">{second.id}</span></h1>' in text
    for cs in second.configsets:  # every ConfigSet with its version and full digest
        row = re.search(rf'<tr data-configset="{cs["name"]}">.*?</tr>', text, re.S)
        assert row and cs["digest"] in row.group(0) and f"<td>{cs['version']}</td>" in row.group(0)
    # the diff against Release 1, as konorctl diff computes it: the changed value, marked
    diff = re.search(r'<div class="cs-diff" data-configset="payments-common" data-op="change">'
                     r".*?</div>", text, re.S)  # fmt: skip
    assert diff, text
    shown = html.unescape(diff.group(0))
    assert "1 → 2" in shown
    change = re.search(r'<li class="chg" data-op="change">.*?</li>', shown, re.S)
    assert change and "/currency_default" in change.group(0)
    assert '<del class="del">"EUR"</del> → <ins class="add">"USD"</ins>' in change.group(0)
    # signer key ids from the signed bundle; the source commit and its author
    assert f'data-keyid="{repo.keyid}"' in text
    assert f'href="/ui/commits/{sha}"' in text and "Ana Test" in text
    assert 'data-origin="commit"' in text
    assert 'href="/ui/rollouts/payments"' in text
    # convergence per node, each linked to its node page
    assert 'data-targeted="3" data-committed="2" data-acked="1" data-failed="1"' in text
    n1, n2, n3 = row_of(text, "n1"), row_of(text, "n2"), row_of(text, "n3")
    assert 'href="/ui/nodes/n1"' in n1 and 'data-committed="true"' in n1
    assert 'data-committed="true"' in n2 and '<span class="badge bad">1</span>' in n2
    assert 'data-place="older"' in n3 and 'data-committed="false"' in n3
    assert 'data-node="x"' not in text  # not in the Group: not listed
    assert text.index('data-node="n2"') < text.index('data-node="n1"')  # trouble first


def test_the_first_release_says_there_is_nothing_to_compare(ui: Ui, repo: Ingested) -> None:
    [first] = repo.releases("checkout")
    ui.login("viewer")
    text = ui.client.get(f"/ui/releases/{first.id}").text
    assert "nothing to compare with" in text and "No enrolled node" in text


def test_the_live_region_renders_alone_for_htmx(ui: Ui, repo: Ingested) -> None:
    [first] = repo.releases("checkout")
    enroll(ui, ("n1", ["checkout"]))
    ui.login("viewer")
    live = ui.client.get(f"/ui/releases/{first.id}", headers={"HX-Request": "true"})
    assert live.status_code == 200
    assert live.text.lstrip().startswith("{#") is False
    assert 'id="release-live"' in live.text and 'hx-trigger="sse:changed"' in live.text
    assert "<h1>" not in live.text and 'data-node="n1"' in live.text


def test_unknown_or_malformed_release_ids_are_404_pages(ui: Ui, repo: Ingested) -> None:
    ui.login("viewer")
    for rid in ("checkout-9-0000000000000000", "nonsense", "a" * 300):
        answer = ui.client.get(f"/ui/releases/{rid}")
        assert answer.status_code == 404, rid
        assert answer.headers["content-type"].startswith("text/html")
        assert "Not found" in answer.text


def test_bad_page_numbers_and_groups_are_400_pages(ui: Ui, repo: Ingested) -> None:
    [first] = repo.releases("checkout")
    ui.login("viewer")
    for path in (
        f"/ui/releases/{first.id}?page=0",
        f"/ui/releases/{first.id}?page=x",
        f"/ui/releases/{first.id}?page=2",
        "/ui/releases?page=-1",
        "/ui/releases?group=Not_A_Group",
    ):
        answer = ui.client.get(path)
        assert answer.status_code == 400, path
        assert "Bad request" in answer.text


def test_the_release_list_is_newest_first_and_filters_by_group(ui: Ui, repo: Ingested) -> None:
    repo.push("payments in USD", payments_v2())
    ui.login("viewer")
    text = ui.client.get("/ui/releases").text
    ids = re.findall(r'<tr data-release="([^"]+)">', text)
    assert ids[0].startswith("payments-2-") or ids[0].startswith("payments-eu-2-")
    assert {i.split("-")[0] for i in ids} >= {"checkout", "payments"}
    only = re.findall(
        r'<tr data-release="([^"]+)">', ui.client.get("/ui/releases?group=checkout").text
    )
    assert only and all(i.startswith("checkout-") for i in only)


def test_without_a_session_the_release_pages_send_the_browser_to_log_in(
    ui: Ui, repo: Ingested
) -> None:
    [first] = repo.releases("checkout")
    for path in (f"/ui/releases/{first.id}", "/ui/releases"):
        answer = ui.client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")


def test_a_release_page_reads_a_fixed_number_of_queries(ui: Ui, repo: Ingested) -> None:
    """1,000 nodes in the Group: the same statements as with 3 (``bench/ui.py`` times it)."""
    [first] = repo.releases("checkout")

    def statements(nodes: int, start: int) -> int:
        enroll(ui, *((f"m{i:04d}", ["checkout"]) for i in range(start, start + nodes)))
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(str(args[2]))

        sa.event.listen(ui.opened.engine, "before_cursor_execute", count)
        try:
            page = load_release(ui.opened.engine, first.id)
        finally:
            sa.event.remove(ui.opened.engine, "before_cursor_execute", count)
        assert page is not None and page.nodes.total == start + nodes
        return len(seen)

    assert statements(3, 0) == statements(997, 3)


def test_convergence_is_reused_until_a_report_or_an_audit_event_arrives(
    ui: Ui, repo: Ingested
) -> None:
    [first] = repo.releases("checkout")
    enroll(ui, ("n1", ["checkout"]))
    cache = ConvergenceCache()
    before = load_release(ui.opened.engine, first.id, cache=cache)
    again = load_release(ui.opened.engine, first.id, cache=cache)
    assert before is not None and again is not None
    assert again.convergence is before.convergence  # nothing changed: not counted again
    report(ui, "n1", "checkout", first, [(10, "applied")])
    after = load_release(ui.opened.engine, first.id, cache=cache)
    assert after is not None
    assert (before.convergence.nodes.committed, after.convergence.nodes.committed) == (0, 1)
    with ui.opened.engine.begin() as conn:
        audit.append(conn, "test", "node.revoked", {"node": "n1"})
        conn.execute(sa.update(schema.nodes).values(revoked_at=now()))
    revoked = load_release(ui.opened.engine, first.id, cache=cache)
    assert revoked is not None and revoked.convergence.nodes.targeted == 0


def test_a_manual_release_says_so_and_shows_its_policy_change(ui: Ui, repo: Ingested) -> None:
    made = ui.client.post(
        "/v1/releases",
        json={
            "group": "checkout",
            "configsets": ["checkout-api@1"],
            "strategy": "all-at-once",
            "reason": "hotfix by hand",
        },
        headers={"Authorization": f"Bearer {ui.tokens['operator']}"},
    )
    assert made.status_code in (200, 201), made.text
    _, manual = repo.releases("checkout")
    ui.login("viewer")
    text = html.unescape(ui.client.get(f"/ui/releases/{manual.id}").text)
    assert 'data-origin="manual"' in text and "hotfix by hand" in text
    assert "token:ui-operator(" in text  # who made it
    policy = re.search(r'<div class="cs-diff" data-policy="canary">.*?</div>', text, re.S)
    assert policy and '<li class="chg" data-op="change">' in policy.group(0)
    assert '<del class="del">canary</del> → <ins class="add">all-at-once</ins>' in policy.group(0)
    assert '<div class="cs-diff" data-configset="checkout-flags" data-op="same">' in text
    back = re.search(r'<div class="cs-diff" data-configset="checkout-api" data-op="change">'
                     r".*?</div>", text, re.S)  # fmt: skip
    assert back and "2 → 1" in back.group(0) and '<li class="' in back.group(0)
