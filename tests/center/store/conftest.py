"""Fixtures for the store's own tests: an engine on the module's store (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from konorkestra.center.store import open_store


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """A migrated store at ``store_url``, disposed after the test."""
    engine = open_store(store_url)
    yield engine
    engine.dispose()
