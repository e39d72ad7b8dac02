"""Logging in and out of the dashboard; the session cookie; form tokens; headers."""

from __future__ import annotations

import sqlalchemy as sa

from konorkestra.center.store import schema
from konorkestra.center.ui.login import safe_next
from konorkestra.center.ui.sessions import COOKIE
from tests.center.ui.conftest import NONCE_RE, Ui


def test_a_page_without_a_session_sends_the_browser_to_log_in(ui: Ui) -> None:
    answer = ui.client.get("/ui/?x=1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=%2Fui%2F%3Fx%3D1"
    htmx = ui.client.get("/ui/", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"].startswith("/ui/login")


def test_root_redirects_to_the_dashboard(ui: Ui) -> None:
    answer = ui.client.get("/", follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == "/ui/"


def test_logging_in_sets_a_strict_httponly_secure_cookie_and_audits_it(ui: Ui) -> None:
    form = ui.client.get("/ui/login")
    nonce = NONCE_RE.search(form.text)
    assert nonce
    answer = ui.client.post(
        "/ui/login",
        data={"nonce": nonce.group(1), "token": ui.tokens["viewer"], "next": "/ui/audit"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/audit"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE))
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/ui", "Max-Age=28800"):
        assert attribute.lower() in cookie.lower(), cookie
    secret = cookie.split(";")[0].split("=", 1)[1]
    with ui.opened.engine.connect() as conn:
        stored = conn.execute(sa.select(schema.ui_sessions.c.hash)).scalars().all()
        actions = conn.execute(sa.select(schema.audit.c.action, schema.audit.c.actor)).all()
    assert len(stored) == 1 and secret not in stored[0]  # only a hash is kept
    assert actions[-1][0] == "session.opened" and actions[-1][1].startswith("token:ui-viewer(")
    assert ui.client.get("/ui/").status_code == 200


def test_a_wrong_token_is_refused_without_saying_why(ui: Ui) -> None:
    form = ui.client.get("/ui/login")
    for token in ("kt_000000000000.wrongwrongwrongwrongwrong", "nonsense", ""):
        nonce = NONCE_RE.search(form.text)  # each answer is a fresh form
        assert nonce
        form = ui.client.post(
            "/ui/login", data={"nonce": nonce.group(1), "token": token}, follow_redirects=False
        )
        assert form.status_code == 401
        assert "not valid" in form.text
        assert COOKIE not in form.headers.get("set-cookie", "")


def test_a_login_form_posted_from_elsewhere_is_refused(ui: Ui) -> None:
    ui.client.cookies.clear()
    answer = ui.client.post(
        "/ui/login", data={"nonce": "forged", "token": ui.tokens["admin"]}, follow_redirects=False
    )
    assert answer.status_code == 403


def test_next_never_leaves_the_dashboard() -> None:
    assert safe_next("/ui/nodes?x=1") == "/ui/nodes?x=1"
    for hostile in ("https://evil.example/", "//evil.example/ui/", "/ui//evil", "/v1/tokens", None):
        assert safe_next(hostile) == "/ui/"


def test_logout_ends_the_session_and_needs_the_form_token(ui: Ui) -> None:
    csrf = ui.login("viewer")
    refused = ui.client.post("/ui/logout", data={"csrf": "forged"}, follow_redirects=False)
    assert refused.status_code == 403
    assert ui.client.get("/ui/", follow_redirects=False).status_code == 200
    out = ui.client.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    with ui.opened.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(schema.ui_sessions)).scalar() == 0
        )


def test_revoking_the_token_ends_its_sessions(ui: Ui) -> None:
    ui.login("operator")
    token_id = ui.tokens["operator"].split(".")[0].removeprefix("kt_")
    with ui.opened.engine.begin() as conn:
        conn.execute(
            sa.update(schema.api_tokens)
            .where(schema.api_tokens.c.id == token_id)
            .values(revoked_at=sa.func.now())
        )
    assert ui.client.get("/ui/", follow_redirects=False).status_code == 303


def test_every_ui_response_has_a_strict_content_security_policy(ui: Ui) -> None:
    ui.login("viewer")
    for path in ("/ui/", "/ui/login", "/ui/nope", "/ui/static/app.css"):
        answer = ui.client.get(path)
        csp = answer.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["server-timing"].startswith("app;dur=")
    missing = ui.client.get("/ui/nope")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")


def test_pages_have_no_inline_script_or_style(ui: Ui) -> None:
    ui.login("admin")
    page = ui.client.get("/ui/").text
    assert "<script>" not in page and "<style" not in page and " style=" not in page
    assert "https://" not in page.replace('"https://testserver', "")  # nothing from a CDN
