"""Fixtures for Center tests: a real data dir, a real SQLite store, the real app."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from konorkestra.center.app import create_app
from konorkestra.center.datadir import Opened, open_data_dir
from konorkestra.center.tokens import Role, create_token
from tests.helpers.inproc import Api, make_ctx


@pytest.fixture
def opened(tmp_path: Path) -> Opened:
    return open_data_dir(tmp_path / "data")


@pytest.fixture
def api(opened: Opened) -> Iterator[Api]:
    ctx = make_ctx(opened)
    tokens = {"admin": opened.new_admin_token or ""}
    with opened.engine.begin() as conn:
        for role in (Role.VIEWER, Role.OPERATOR):
            tokens[str(role)], _ = create_token(
                conn, role=role, name=f"t-{role}", created_by="test"
            )
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield Api(client, ctx, opened, tokens)
