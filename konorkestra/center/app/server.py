"""Assemble a runnable Center from a data directory and a repository.

Invariants:

* Every setup failure a person can fix (unreadable repo, bad key file, a
  database from a newer Center, an unreachable database) becomes
  :class:`CenterSetupError` with a one-line message; nothing half-starts.
* The admin token is returned only on the start that created it.
* On PostgreSQL every Center is a replica that may share the store with others
  (:mod:`konorkestra.center.store.broadcast`): its Releases, rollout moves,
  node-row writes and ingest requests are broadcast, and the others' arrive
  here as the same in-process calls a local change makes. On SQLite nothing of
  this is wired: there is one Center.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from starlette.applications import Starlette

from konorkestra.center.agentapi.api import AgentApi
from konorkestra.center.agentapi.notify import ReleaseNotifier
from konorkestra.center.agentapi.writer import ReportWriter
from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.datadir import open_data_dir
from konorkestra.center.app.factory import create_app
from konorkestra.center.app.metrics import CenterMetrics
from konorkestra.center.ingest import build_ingest
from konorkestra.center.ingest.gitsource import SourceUnavailable
from konorkestra.center.ingest.worker import IngestService
from konorkestra.center.nodes.enrollment import EnrollmentRoutes, EnrollmentService
from konorkestra.center.nodes.jointokens import JoinTokenHasher
from konorkestra.center.pki.ca import DEFAULT_NODE_LIFETIME
from konorkestra.center.pki.certs import CAError
from konorkestra.center.pki.identity import ClientIdentityMiddleware
from konorkestra.center.pki.tlscontext import CenterTLS
from konorkestra.center.releases.signer import Releaser
from konorkestra.center.rollouts.runner import RolloutRunner
from konorkestra.center.store.broadcast import Broadcast
from konorkestra.center.store.busevents import (
    Event,
    IngestAsked,
    IngestDone,
    NodeChanged,
    Released,
    Reported,
)
from konorkestra.center.store.engine import StoreUnavailable
from konorkestra.center.store.migrations import SchemaTooNew
from konorkestra.center.store.retention import DEFAULT_RETENTION, ReportPruner
from konorkestra.center.ui.pulse import Pulse
from konorkestra.trust import DEFAULT_FRESHNESS_TTL, KeyStorageError, TrustError

Notify = Callable[[str, int], None]
"""``notify(group, sequence)``: a Release (``sequence > 0``) or a rollout move (``0``)."""


class CenterSetupError(Exception):
    """The Center cannot start; the message says what to fix."""


@dataclass(frozen=True)
class Built:
    app: Starlette
    ctx: CenterContext
    admin_token: str | None
    admin_token_path: Path
    tls: CenterTLS


def build(
    *,
    data: Path,
    repo: str,
    branch: str,
    db_url: str | None = None,
    poll_interval: float | None = None,
    watch: bool = True,
    hosts: list[str] | None = None,
    trust_domain: str = "konorkestra.local",
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    tls_ca: Path | None = None,
    freshness_ttl: dt.timedelta = DEFAULT_FRESHNESS_TTL,
    node_cert_lifetime: dt.timedelta = DEFAULT_NODE_LIFETIME,
    report_retention: dt.timedelta = DEFAULT_RETENTION,
) -> Built:
    """Open (or initialize) ``data``, wire ingest for ``repo``, return the app.

    ``freshness_ttl``: how long an agent may call its config fresh without
    hearing from the Center; ``node_cert_lifetime``: the lifetime of the node
    certificates issued at enrollment and renewal (renewed at two thirds);
    ``report_retention``: how long ``node_reports`` rows are kept (the rows a
    node's view needs stay longer; see :mod:`konorkestra.center.store.retention`).
    """
    try:
        opened = open_data_dir(data, db_url=db_url)
    except (KeyStorageError, TrustError, SchemaTooNew) as exc:
        raise CenterSetupError(f"data directory {data}: {exc}") from None
    except StoreUnavailable as exc:
        raise CenterSetupError(f"store: {exc}") from None
    except sa.exc.SQLAlchemyError as exc:
        words = " ".join(str(getattr(exc, "orig", None) or exc).split())  # one line
        raise CenterSetupError(
            f"cannot open the store: {exc.__class__.__name__}: {words}"
        ) from None
    except OSError as exc:
        raise CenterSetupError(f"data directory {data}: {exc.strerror}") from None
    try:
        center_tls = CenterTLS.prepare(
            data / "pki",
            trust_domain=trust_domain,
            hosts=hosts or ["127.0.0.1", "::1", "localhost"],
            cert_file=tls_cert,
            key_file=tls_key,
            ca_file=tls_ca,
        )
        hasher = JoinTokenHasher.load_or_create(data / "pki" / "enroll-hmac.key")
    except (CAError, OSError, ValueError) as exc:
        raise CenterSetupError(f"TLS setup: {exc}") from None
    enrollment = EnrollmentService(
        opened.engine, ca=center_tls.ca, hasher=hasher, cert_lifetime=node_cert_lifetime
    )
    metrics = CenterMetrics()
    releaser = Releaser([opened.signers["release"]], source_repo=repo)
    try:
        ingest = build_ingest(
            opened.engine,
            releaser,
            metrics,
            repo=repo,
            branch=branch,
            mirror=opened.data.mirror,
            poll_interval=poll_interval,
            watch=watch,
        )
    except SourceUnavailable as exc:
        raise CenterSetupError(f"repository: {exc}") from None
    # Agent API (issue 6): long-poll wake-ups on new Releases. Agent routes fail
    # closed (401) without a verified client certificate.
    agent_api = AgentApi(
        ReleaseNotifier(),
        [opened.signers["timestamp"]],
        freshness_ttl,
        writer=ReportWriter(opened.engine),
    )
    releaser.listeners.append(agent_api.notifier.released)
    # Rollouts (issue 14): one runner decides every Group's desired state per node.
    notify: Notify = agent_api.notifier.released
    bus = Broadcast(opened.engine) if opened.engine.dialect.name == "postgresql" else None
    if bus is not None:
        notify = _and_broadcast(notify, bus)
    runner = RolloutRunner(opened.engine, releaser, notify=notify, metrics=metrics)
    releaser.listeners.append(runner.poke)
    agent_api.report_listeners.append(runner.reported)
    replicas: list[Broadcast] = []
    if bus is not None:
        _connect(bus, releaser, agent_api, runner, enrollment, ingest)
        replicas.append(bus)
    pruner = ReportPruner(opened.engine, retention=report_retention, metrics=metrics)
    pulse = Pulse(opened.engine)  # the dashboard's live updates (issue 16)
    ctx = CenterContext(
        engine=opened.engine,
        trust_root=opened.trust_root,
        releaser=releaser,
        ingest=ingest,
        services=[*replicas, ingest, *agent_api.services, runner, pruner, pulse],
        enrollment=EnrollmentRoutes(enrollment, center_tls.creds.anchor_pem),
        agent_api=agent_api,
        rollouts=runner,
        ui=pulse,
        tls_self_test=True,
        metrics=metrics,
        repo=repo,
        branch=branch,
    )
    app = create_app(ctx)
    app.add_middleware(ClientIdentityMiddleware, trust_domain=trust_domain, authorizer=enrollment)
    return Built(app, ctx, opened.new_admin_token, opened.data.admin_token, center_tls)


def _and_broadcast(
    notify: Callable[[str, int], None], bus: Broadcast
) -> Callable[[str, int], None]:
    """The runner's ``notify``: wake this replica's parked agents, then the others'."""

    def both(group: str, sequence: int) -> None:
        notify(group, sequence)
        bus.released(group, sequence)

    return both


def _connect(
    bus: Broadcast,
    releaser: Releaser,
    agent_api: AgentApi,
    runner: RolloutRunner,
    enrollment: EnrollmentService,
    ingest: IngestService,
) -> None:
    """Broadcast this replica's changes; turn the others' into the local calls they stand for."""
    releaser.listeners.append(bus.released)
    enrollment.changed.append(bus.node_changed)
    ingest.forward = lambda ticket: bus.publish(IngestAsked(bus.origin, ticket))
    ingest.served = lambda origin, ticket: bus.publish(IngestDone(origin, ticket))

    def reported(groups: frozenset[str]) -> None:
        if not runner.driving:  # the driving runner, elsewhere, decides on reports
            for group in sorted(groups):
                bus.publish(Reported(group))

    agent_api.report_listeners.append(reported)

    def receive(event: Event) -> None:
        match event:
            case Released(group, sequence):
                agent_api.notifier.released(group, sequence)  # caches, then parked agents
                if sequence > 0:
                    runner.poke()  # a new Release: the driving runner decides at once
            case NodeChanged(node_id):
                enrollment.forget(node_id)
            case Reported(group):
                runner.reported(frozenset({group}))
            case IngestAsked(origin, ticket):
                ingest.asked(origin, ticket)
            case IngestDone(origin, ticket) if origin == bus.origin:
                ingest.remote_done(ticket)

    bus.receivers.append(receive)
