"""HTTP routes, one module per resource; :func:`all_routes` lists them in order.

Each module exposes ``routes``. Agent routes (mTLS) arrive via
``CenterContext.extra_routes`` rather than here.
"""

from __future__ import annotations

import importlib

from starlette.routing import BaseRoute

MODULES = (
    "health",
    "openapi",
    "trust",
    "commits",
    "groups",
    "releases",
    "blobs",
    "audit",
    "hooks",
    "tokens",
)


def all_routes() -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        out += module.routes
    return out
