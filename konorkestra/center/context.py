"""What a Center app needs, in one object: the app factory's only argument.

Later issues extend the Center by adding to this object (services such as the
rollout engine, extra routes such as the agent API, TLS settings), never by
changing the factory's signature.

Invariants:

* Every background service is started by the app's lifespan, in order, and
  stopped in reverse order; the app is ready (``/readyz``) only when the store
  answers and every service says it is ready.
* ``trust_root`` is the exact JSON document agents pin; it is served verbatim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.engine import Engine
from starlette.routing import BaseRoute

from konorkestra.center.metrics import CenterMetrics
from konorkestra.center.releases import Releaser


class Service(Protocol):
    """A background task the app runs while it serves (e.g. Git ingest)."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def ready(self) -> tuple[bool, str]:
        """``(ready, why-not)``."""
        ...


class IngestTrigger(Protocol):
    """The ingest worker as routes see it."""

    def trigger(self, reason: str) -> int:
        """Ask for a look at the repository now; returns a ticket."""
        ...

    async def wait_for(self, ticket: int, timeout: float) -> bool:
        """Wait until the pass that serves ``ticket`` is done; False on timeout."""
        ...

    def status(self) -> dict[str, object]: ...


@dataclass
class CenterContext:
    """Everything the routes and services share."""

    engine: Engine
    trust_root: bytes
    releaser: Releaser | None = None
    ingest: IngestTrigger | None = None
    services: list[Service] = field(default_factory=list)
    extra_routes: Sequence[BaseRoute] = ()
    metrics: CenterMetrics = field(default_factory=CenterMetrics)
    repo: str = ""
    branch: str = "main"
