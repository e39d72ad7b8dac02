"""An in-process Center app over a real data dir and SQLite store (no sockets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from starlette.testclient import TestClient

from konorkestra.center.agentapi.api import AgentApi
from konorkestra.center.agentapi.notify import ReleaseNotifier
from konorkestra.center.agentapi.writer import ReportWriter
from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.datadir import Opened
from konorkestra.center.releases.signer import Releaser


@dataclass
class Api:
    """The app's test client with one token per role (admin, operator, viewer)."""

    client: TestClient
    ctx: CenterContext
    opened: Opened
    tokens: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, path: str, role: str = "viewer", **kw: Any) -> httpx.Response:
        headers = {**self.headers(role), **kw.pop("headers", {})}
        return self.client.get(path, headers=headers, **kw)

    def post(self, path: str, role: str = "operator", **kw: Any) -> httpx.Response:
        headers = {**self.headers(role), **kw.pop("headers", {})}
        return self.client.post(path, headers=headers, **kw)


def make_ctx(opened: Opened, *, agent_api: bool = False, **extra: Any) -> CenterContext:
    """A context over ``opened`` with a release signer; with ``agent_api``, wired for
    the agent routes exactly as :func:`konorkestra.center.app.server.build` does."""
    releaser = Releaser([opened.signers["release"]], source_repo="test-repo")
    ctx = CenterContext(
        engine=opened.engine, trust_root=opened.trust_root, releaser=releaser, **extra
    )
    if agent_api:
        api = AgentApi(
            ReleaseNotifier(), [opened.signers["timestamp"]], writer=ReportWriter(opened.engine)
        )
        releaser.listeners.append(api.notifier.released)
        ctx.agent_api = api
        ctx.services = [*ctx.services, *api.services]
    return ctx


def with_ingest(ctx: CenterContext, opened: Opened, bare: str) -> None:
    """Wire a real ingest of the bare repo ``bare`` into ``ctx`` (no watcher, no poll:
    tests trigger it through ``POST /v1/hooks/git`` or ``ctx.ingest``)."""
    from konorkestra.center.ingest import build_ingest

    assert ctx.releaser is not None
    ingest = build_ingest(
        opened.engine,
        ctx.releaser,
        ctx.metrics,
        repo=bare,
        branch="main",
        mirror=opened.data.mirror,
        poll_interval=3600,
        watch=False,
    )
    ctx.ingest, ctx.services = ingest, [ingest]
