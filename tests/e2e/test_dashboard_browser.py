"""The dashboard in a real browser, against a real Center, real agents and a real ``git push``.

Headless Debian Chromium (Playwright's sync API, ``executable_path``: no browser
download; see :mod:`tests.helpers.browser`) drives ``/ui/`` of the rollout fleet of
:mod:`tests.e2e.rolloutfleet` (a ``konorkestra center``, ten ``konorkestra agent run``
processes in ``checkout``, SDK apps on three of them), as issue 16 asks:

1. alice (an operator API token) logs in through the form;
2. a ``git push`` starts a canary under a Policy with manual approval, and the
   overview's progress bar moves while the page stays loaded (SSE + htmx, no reload);
3. on the rollout page she types a reason, clicks Approve, confirms, sees the notice
   and the phase move on;
4. the audit page shows ``approval.granted`` with ``alice`` as its actor;
5. victor (a viewer) sees no command form; his forged POST (valid session and form
   token) is refused with 403 and audits nothing;
6. every page is screenshotted (and the overview at a phone's 390x844) under the
   test's output directory, with no console error and no CSP violation on any page.

Refresh the README's screenshots (``docs/images/dashboard-*.png``) with::

    KONORKESTRA_SCREENSHOTS=docs/images .venv/bin/pytest -q tests/e2e/test_dashboard_browser.py

Without Chromium the tests skip, or fail under ``KONORKESTRA_REQUIRE_ALL=1`` (CI,
whose ``.ci/run`` installs it). The selectors are the dashboard's contract (ids,
``data-*`` attributes and roles), not its wording or layout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.rolloutfleet import GROUP, Fleet, open_fleet, policy
from tests.helpers.browser import PHONE, Web, browser, find_chromium, require_chromium

__all__ = ["browser"]  # a fixture, used by name

pytestmark = pytest.mark.slow

REASON = "canary healthy in the browser"
LIVE = 30_000
"""Milliseconds the browser may wait for a live change (the machine is shared)."""
COMMANDS = ("approval.", "command.", "rollout.paused", "rollout.resumed", "rollout.aborted")

BAR_STATE = """(group) => {
  const card = document.getElementById(`group-${group}`);
  const bar = card && card.querySelector('.progress[role="progressbar"]');
  if (!bar) return null;
  return {phase: card.dataset.phase, acked: bar.dataset.acked, committed: bar.dataset.committed,
          failed: bar.dataset.failed, targeted: bar.dataset.targeted,
          enrolled: bar.dataset.enrolled,
          now: bar.getAttribute("aria-valuenow"), max: bar.getAttribute("aria-valuemax"),
          min: bar.getAttribute("aria-valuemin"), marker: window.__marker === 1};
}"""
MOVED = f"""([group, before]) => {{
  const now = ({BAR_STATE})(group);
  return now && now.phase === "awaiting_approval" && Number(now.committed) >= 1
    && (now.acked !== before.acked || now.now !== before.now) ? now : null;
}}"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    require_chromium()  # before the fleet: a skip should not cost its start-up
    with open_fleet(tmp_path_factory.mktemp("dashboard")) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(fleet: Fleet) -> dict[str, str]:
    """``alice`` (operator) and ``victor`` (viewer): API tokens made by the admin."""
    made = {}
    for name, role in (("alice", "operator"), ("victor", "viewer")):
        resp = fleet.center.http.post(
            "/v1/tokens", json={"name": name, "role": role},
            headers={"Authorization": f"Bearer {fleet.center.admin_token}"},
        )  # fmt: skip
        assert resp.status_code == 201, resp.text
        made[name] = resp.json()["token"]
    return made


@pytest.fixture
def web(browser: Browser, tmp_path: Path) -> Iterator[Web]:
    watched = Web(browser, tmp_path)
    yield watched
    watched.close()


def log_in(context: BrowserContext, token: str, path: str = "/ui/") -> Page:
    """Open ``path``, get sent to the log-in form, paste ``token``: back on ``path``."""
    page = context.new_page()
    page.goto(path)
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    return page


def csrf_of(page: Page) -> str:
    value = page.locator('input[type="hidden"][name="csrf"]').first.get_attribute("value")
    assert value, "the page carries no form token"
    return value


def bar(page: Page) -> dict[str, Any]:
    state = page.evaluate(BAR_STATE, GROUP)
    assert state, f"no progress bar in #group-{GROUP}"
    return state  # type: ignore[no-any-return]


def events_since(fleet: Fleet, mark: int, prefixes: tuple[str, ...]) -> list[dict[str, Any]]:
    return [e for e in fleet.audit(mark) if e["action"].startswith(prefixes)]


def test_without_chromium_the_tests_skip_or_fail_under_require_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KONORKESTRA_CHROMIUM", "/nonexistent/chromium")
    assert find_chromium() is None
    monkeypatch.delenv("KONORKESTRA_REQUIRE_ALL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium found"):
        require_chromium()
    monkeypatch.setenv("KONORKESTRA_REQUIRE_ALL", "1")
    with pytest.raises(pytest.fail.Exception, match="KONORKESTRA_REQUIRE_ALL=1"):
        require_chromium()


def test_a_wrong_token_is_refused_by_the_form(fleet: Fleet, web: Web) -> None:
    page = web.context(fleet.center.url).new_page()
    page.goto("/ui/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    web.shot(page, "dashboard-login")
    web.expect_problem(r"status of 401")  # the browser logs the form's 401 answer
    page.get_by_label("API token").fill("kt_000000000000.not-a-token-at-all")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    expect(page).to_have_url(re.compile(r"/ui/login"))
    web.assert_clean()


def test_push_watch_approve_audit_and_a_viewer_refused(
    fleet: Fleet, tokens: dict[str, str], web: Web
) -> None:
    fleet.settle()
    url = fleet.center.url

    # 1. alice logs in through the form and lands on the overview.
    alice = web.context(url)
    page = log_in(alice, tokens["alice"])
    expect(page.locator(f"article.card.group#group-{GROUP}")).to_be_visible()
    expect(page.locator("#overview-live")).to_have_count(1)
    before = bar(page)
    assert before["min"] == "0" and before["now"] == before["acked"], before
    page.evaluate("window.__marker = 1")

    # 2. A push starts a canary that waits for approval; the bar moves with no reload.
    release = fleet.release("dashboard canary", policy(bakes=(1, 60), approval="manual"))
    moved = page.wait_for_function(MOVED, arg=[GROUP, before], timeout=LIVE).json_value()
    assert moved["marker"], "the overview was reloaded; it should have updated in place"
    status = fleet.wait_status(
        lambda s: s["release"]["id"] == release["id"] and s["phase"] == "awaiting_approval",
        "the canary to wait for approval",
    )
    # The bar's whole is the Group: the canary's one node of ten is a tenth of it.
    assert moved["max"] == moved["enrolled"] and moved["now"] == moved["acked"], moved
    counts = ("acked", "committed", "failed", "targeted", "enrolled")
    assert all(str(moved[k]).isdigit() for k in counts), moved
    assert int(moved["acked"]) <= int(moved["targeted"]) < int(moved["enrolled"]), moved
    assert status["step"] == 0 and status["nodes"]["targeted"] == 1
    assert int(moved["enrolled"]) == status["nodes"]["enrolled"], moved
    web.shot(page, "dashboard-overview")

    # 3. The rollout page: a reason, Approve, confirm; a notice, the phase moves on.
    page.locator(f'#group-{GROUP} a[href="/ui/rollouts/{GROUP}"]').first.click()
    expect(page).to_have_url(re.compile(f"/ui/rollouts/{GROUP}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(GROUP)
    expect(page.locator("#rollout-live")).to_have_count(1)
    expect(page.locator("#rollout-phase")).to_have_attribute("data-phase", "awaiting_approval")
    approve = page.locator('form.command:has(button[data-command="approve"])')
    expect(approve).to_have_attribute("action", f"/ui/rollouts/{GROUP}/approve")
    expect(approve).to_have_attribute("method", "post")
    expect(approve.locator('input[type="hidden"][name="csrf"]')).to_have_count(1)
    approve.get_by_label("Reason").fill(REASON)
    asked: list[str] = []

    def confirm(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    with page.expect_navigation():
        approve.locator('button[data-command="approve"]').click()
    assert asked and asked[0].strip(), "Approve did not ask for a confirmation"
    expect(page).to_have_url(re.compile(f"/ui/rollouts/{GROUP}\\?notice="))
    expect(page.locator(".notice").first).to_be_visible()
    expect(page.locator("#rollout-phase")).not_to_have_attribute(
        "data-phase", "awaiting_approval", timeout=LIVE
    )
    approved = fleet.wait_status(lambda s: s["step"] == 1, "the approval to start step 1")
    [granted] = approved["approvals"]
    assert granted["reason"] == REASON and granted["actor"].startswith("token:alice(")
    expect(page.locator('ol.timeline li[data-action="approval.granted"]')).to_contain_text(
        "alice", timeout=LIVE
    )
    web.shot(page, "dashboard-rollout")

    # 4. The audit page: the approval, by alice; the chain verifies; an export link.
    page.get_by_role("link", name="Audit").first.click()
    expect(page).to_have_url(re.compile(r"/ui/audit"))
    row = page.locator('tr[data-action="approval.granted"]').filter(has_text="alice")
    expect(row.first).to_be_visible()
    [event] = [e for e in fleet.audit() if e["action"] == "approval.granted"]
    expect(row.first).to_have_attribute("data-seq", str(event["seq"]))
    expect(page.locator("#chain-status")).to_have_attribute("data-ok", "true")
    expect(page.locator("a#audit-export")).to_have_attribute(
        "href", re.compile(r"^/ui/audit/export")
    )
    web.shot(page, "dashboard-audit")
    with page.expect_download() as download:
        page.locator("a#audit-export").click()
    exported = Path(download.value.path()).read_text()
    assert '"approval.granted"' in exported and "token:alice(" in exported

    # 5. victor (viewer): no command form, and a forged command is refused and not audited.
    victor = web.context(url)
    viewer = log_in(victor, tokens["victor"], f"/ui/rollouts/{GROUP}")
    expect(viewer.get_by_role("heading", level=1)).to_contain_text(GROUP)
    expect(viewer.locator("#rollout-phase")).to_have_count(1)
    expect(viewer.locator("form.command")).to_have_count(0)
    expect(viewer.locator("button[data-command]")).to_have_count(0)
    control = alice.new_page()  # the same page, at the same moment, has forms for an operator
    control.goto(f"/ui/rollouts/{GROUP}")
    expect(control.locator('form.command button[data-command="pause"]')).to_have_count(1)
    control.close()
    mark = fleet.audit_mark()
    phase = fleet.status()["phase"]
    for command in ("pause", "abort", "approve"):
        forged = victor.request.post(
            f"/ui/rollouts/{GROUP}/{command}",
            form={"csrf": csrf_of(viewer), "reason": "forged"},
            max_redirects=0,
        )
        assert forged.status == 403, (command, forged.status, forged.text()[:300])
        assert "viewer role" in forged.text(), forged.text()[:300]  # refused for the role
    # The same POST from alice's session without its form token is refused too.
    no_token = alice.request.post(
        f"/ui/rollouts/{GROUP}/pause", form={"reason": "no form token"}, max_redirects=0
    )
    assert no_token.status == 403 and "form token" in no_token.text(), no_token.text()[:300]
    assert events_since(fleet, mark, COMMANDS) == []
    assert [e for e in fleet.audit(mark) if "victor" in e["actor"]] == []
    assert fleet.status()["phase"] == phase
    victor.close()

    # 6. The other pages, each with real content, and the overview on a phone.
    canary = fleet.agents[0]
    page.goto("/ui/nodes")
    expect(page.locator(f'tr[data-node="{canary.node_id}"]')).to_have_count(1)
    web.shot(page, "dashboard-nodes")
    page.locator(
        f'tr[data-node="{canary.node_id}"] a[href="/ui/nodes/{canary.node_id}"]'
    ).first.click()
    expect(page).to_have_url(re.compile(f"/ui/nodes/{canary.node_id}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        re.compile(f"{re.escape(canary.name)}|{canary.node_id}")
    )
    app_pid = fleet.apps[canary.name].proc.pid
    expect(page.locator(f'tr[data-pid="{app_pid}"]')).to_have_count(1)
    web.shot(page, "dashboard-node")

    shown = page.goto(f"/ui/releases/{release['id']}")
    assert shown is not None and shown.ok, shown and shown.status
    expect(page.locator("main")).to_contain_text(release["id"])
    web.shot(page, "dashboard-release")

    shown = page.goto("/ui/commits")
    assert shown is not None and shown.ok, shown and shown.status
    expect(page.locator("main")).to_contain_text(fleet.repo.head()[:7])
    web.shot(page, "dashboard-commits")

    page.set_viewport_size(PHONE)
    page.goto("/ui/")
    expect(page.locator(f"#group-{GROUP} .progress[role=progressbar]").first).to_be_visible()
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= PHONE["width"], f"the overview is {wide}px wide on a {PHONE['width']}px phone"
    web.shot(page, "dashboard-phone")

    web.close()  # closes the SSE streams before the problems are read
    web.assert_clean()
