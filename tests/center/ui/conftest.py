"""Fixtures for dashboard tests: the real app over a real store, a browser-like client.

``ui`` is a TestClient on ``https://testserver`` (the session cookie is
``Secure``) over a Center whose context has the dashboard's pulse; ``login``
opens a session for a role and returns the page's form token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from konorkestra.center.app.datadir import Opened
from konorkestra.center.app.factory import create_app
from konorkestra.center.operators.apitokens import Role, create_api_token
from konorkestra.center.ui.pulse import Pulse
from tests.helpers.inproc import make_ctx

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
NONCE_RE = re.compile(r'name="nonce" value="([^"]+)"')


@dataclass
class Ui:
    client: TestClient
    opened: Opened
    tokens: dict[str, str]

    def login(self, role: str = "operator", next_path: str = "/ui/") -> str:
        """Log in as ``role`` through the form; the session's form token."""
        form = self.client.get("/ui/login")
        nonce = NONCE_RE.search(form.text)
        assert nonce, form.text
        answer = self.client.post(
            "/ui/login",
            data={"nonce": nonce.group(1), "token": self.tokens[role], "next": next_path},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        page = self.client.get("/ui/")
        found = CSRF_RE.search(page.text)
        assert found, page.text
        return found.group(1)


@pytest.fixture
def ui(opened: Opened) -> Iterator[Ui]:
    ctx = make_ctx(opened, agent_api=True)
    ctx.ui = Pulse(opened.engine, poll=0.05)
    ctx.services = [*ctx.services, ctx.ui]
    tokens = {"admin": opened.new_admin_token or ""}
    with opened.engine.begin() as conn:
        for role in (Role.VIEWER, Role.OPERATOR):
            tokens[str(role)], _ = create_api_token(
                conn, role=role, name=f"ui-{role}", created_by="test"
            )
    app = create_app(ctx)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        yield Ui(client, opened, tokens)
