"""What a Center app needs, in one object: the app factory's only argument.

Later issues extend the Center by adding typed fields to this object (services
such as the rollout engine, what a wing's routes need), never by changing the
factory's signature. A wing whose field is unset serves no routes: an app built
from ``CenterContext(engine=..., trust_root=...)`` serves the operator API only.

Invariants:

* Every background service is started by the app's lifespan, in order, and
  stopped in reverse order; the app is ready (``/readyz``) only when the store
  answers and every service says it is ready.
* ``trust_root`` is the exact JSON document agents pin; it is served verbatim.
* ``enrollment`` enables the node routes (enrollment, join tokens, nodes),
  ``agent_api`` the agent routes, ``tls_self_test`` ``GET /v1/tls/self-test``,
  ``ui`` the dashboard (``/ui/``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.engine import Engine

from konorkestra.center.agentapi.api import AgentApi
from konorkestra.center.app.metrics import CenterMetrics
from konorkestra.center.nodes.enrollment import EnrollmentRoutes
from konorkestra.center.releases.signer import Releaser
from konorkestra.center.rollouts.runner import RolloutRunner
from konorkestra.center.ui.pulse import Pulse


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
    enrollment: EnrollmentRoutes | None = None
    agent_api: AgentApi | None = None
    rollouts: RolloutRunner | None = None
    """The rollout runner: operator commands poke it (the rollout routes need it)."""
    ui: Pulse | None = None
    """The dashboard's change feed: set, the Center serves the dashboard at ``/ui/``."""
    tls_self_test: bool = False
    metrics: CenterMetrics = field(default_factory=CenterMetrics)
    repo: str = ""
    branch: str = "main"
