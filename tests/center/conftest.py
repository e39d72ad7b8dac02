"""Fixtures for Center tests: a real data dir, a real store, the real app.

A test that uses ``store_url`` (directly or through ``opened``/``api``) runs on
SQLite; in a module marked ``pytestmark = pytest.mark.postgresql`` it runs twice,
on SQLite and on a fresh database of the session's throwaway PostgreSQL.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from konorkestra.center.app.datadir import Opened, open_data_dir
from konorkestra.center.app.factory import create_app
from konorkestra.center.operators.apitokens import Role, create_api_token
from konorkestra.center.store.engine import sqlite_url
from tests.helpers.inproc import Api, make_ctx


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_url" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("postgresql") is not None
        only = metafunc.definition.get_closest_marker("postgresql_only") is not None
        urls = ["postgresql"] if only else ["sqlite", "postgresql"] if both else ["sqlite"]
        metafunc.parametrize("store_url", urls, indirect=True)


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's URL: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return sqlite_url(str(tmp_path / "center.db"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def opened(tmp_path: Path, store_url: str) -> Opened:
    """A data dir with its default SQLite store, or with the PostgreSQL ``store_url``."""
    sqlite = store_url.startswith("sqlite")
    return open_data_dir(tmp_path / "data", db_url=None if sqlite else store_url)


@pytest.fixture
def api(opened: Opened) -> Iterator[Api]:
    ctx = make_ctx(opened)
    tokens = {"admin": opened.new_admin_token or ""}
    with opened.engine.begin() as conn:
        for role in (Role.VIEWER, Role.OPERATOR):
            tokens[str(role)], _ = create_api_token(
                conn, role=role, name=f"t-{role}", created_by="test"
            )
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield Api(client, ctx, opened, tokens)
