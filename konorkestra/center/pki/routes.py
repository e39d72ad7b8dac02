"""The pki wing's routes: ``GET /v1/tls/self-test`` when ``ctx.tls_self_test`` is set.

The route answers only the caller's own node identity (see
:mod:`konorkestra.center.pki.selftest`); the assembled Center
(:func:`konorkestra.center.app.server.build`) always serves it, so its start-up
self-test can call itself.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from konorkestra.center.app.context import CenterContext
from konorkestra.center.pki.selftest import tls_self_test_route


def routes(ctx: CenterContext) -> list[BaseRoute]:
    """The self-test route, if ``ctx`` asks for it."""
    return [tls_self_test_route()] if ctx.tls_self_test else []
