"""The commits pages: accepted and rejected commits, diagnostics as the CLI prints them.

Commits are made in a real Git repo and judged by the real ingest
(:class:`tests.center.ui.test_release_page.Ingested`).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from konorkestra.repo.diagnostics import CODES
from tests.center.ui.conftest import Ui
from tests.center.ui.test_release_page import Ingested, payments_v2, row_of
from tests.helpers.configrepo import BROKEN_GROUP


def test_the_list_shows_verdicts_authors_releases_and_a_rejected_commits_diagnostics(
    ui: Ui, tmp_path: Path
) -> None:
    repo = Ingested(ui, tmp_path)
    first = repo.work.head()
    good = repo.push("payments in USD", payments_v2())
    bad = repo.push("add a broken group", {"groups/broken.yaml": BROKEN_GROUP})
    ui.login("viewer")
    text = ui.client.get("/ui/commits").text
    shas = re.findall(r'<tr data-sha="([0-9a-f]+)"', text)
    assert shas == [bad, good, first]  # newest first
    accepted = row_of(text, good, "data-sha")
    assert '<span class="badge ok" data-status="accepted">accepted</span>' in accepted
    assert "Ana Test" in accepted and "payments in USD" in accepted
    made = re.findall(r'href="/ui/releases/([^"]+)"', accepted)
    assert made and {m.rsplit("-", 2)[0] for m in made} == {"payments", "payments-eu"}
    rejected = html.unescape(row_of(text, bad, "data-sha"))
    assert '<span class="badge bad" data-status="rejected">rejected</span>' in rejected
    diag = re.search(
        r'<li data-code="missing-policy" data-severity="error">.*?</li>', rejected, re.S
    )
    assert diag, rejected
    shown = diag.group(0)
    where = re.search(r'<code class="where">([^<]+)</code>', shown)
    assert where and re.fullmatch(r"groups/broken\.yaml:\d+:\d+", where.group(1)), shown
    assert "[missing-policy]" in shown and "no-such-policy" in shown
    assert f"hint: {CODES['missing-policy']}" in shown
    assert "/ui/releases/" not in rejected  # a rejected commit released nothing


def test_the_filter_keeps_one_verdict_and_a_bad_value_is_a_400_page(ui: Ui, tmp_path: Path) -> None:
    repo = Ingested(ui, tmp_path)
    bad = repo.push("add a broken group", {"groups/broken.yaml": BROKEN_GROUP})
    ui.login("viewer")
    rejected = ui.client.get("/ui/commits?status=rejected").text
    assert re.findall(r'<tr data-sha="([0-9a-f]+)"', rejected) == [bad]
    accepted = ui.client.get("/ui/commits?status=accepted").text
    assert re.findall(r'data-status="([a-z]+)"', accepted) and bad not in accepted
    for query in ("status=merged", "status=ACCEPTED", "before=x", "before=0", "before=-3"):
        answer = ui.client.get(f"/ui/commits?{query}")
        assert answer.status_code == 400, query
        assert (
            answer.headers["content-type"].startswith("text/html") and "Bad request" in answer.text
        )


def test_the_list_pages_by_cursor(ui: Ui, tmp_path: Path) -> None:
    Ingested(ui, tmp_path)  # the example repo's first commit
    ui.login("viewer")
    page = ui.client.get("/ui/commits?before=1").text
    assert "No commits older than these" in page
    assert "Older" not in ui.client.get("/ui/commits").text  # one commit: one page


def test_one_commit_shows_every_diagnostic_and_unknown_shas_are_404(ui: Ui, tmp_path: Path) -> None:
    repo = Ingested(ui, tmp_path)
    bad = repo.push("add a broken group", {"groups/broken.yaml": BROKEN_GROUP})
    ui.login("viewer")
    page = ui.client.get(f"/ui/commits/{bad[:10]}")
    assert page.status_code == 200
    assert f'<dd class="mono">{bad}</dd>' in page.text and 'data-code="missing-policy"' in page.text
    for sha in ("0000000", "xyz", "ab"):
        answer = ui.client.get(f"/ui/commits/{sha}")
        assert answer.status_code == 404, sha
        assert "Not found" in answer.text


def test_the_live_region_renders_alone_for_htmx(ui: Ui, tmp_path: Path) -> None:
    Ingested(ui, tmp_path)  # the example repo's first commit
    ui.login("viewer")
    live = ui.client.get("/ui/commits?status=accepted", headers={"HX-Request": "true"})
    assert live.status_code == 200 and "<h1>" not in live.text
    assert 'id="commits-live" hx-get="/ui/commits?status=accepted"' in live.text


def test_without_a_session_the_commits_pages_send_the_browser_to_log_in(
    ui: Ui, tmp_path: Path
) -> None:
    repo = Ingested(ui, tmp_path)
    for path in ("/ui/commits", f"/ui/commits/{repo.work.head()}"):
        answer = ui.client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")
