"""Fixtures every suite may use: a throwaway PostgreSQL (see ``tests/helpers/postgres.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.postgres import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]
