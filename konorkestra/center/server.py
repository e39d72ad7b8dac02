"""Assemble a runnable Center from a data directory and a repository.

Invariants:

* Every setup failure a person can fix (unreadable repo, bad key file, a
  database from a newer Center, an unreachable database) becomes
  :class:`CenterSetupError` with a one-line message; nothing half-starts.
* The admin token is returned only on the start that created it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from starlette.applications import Starlette

from konorkestra.center.app import create_app
from konorkestra.center.ca import DEFAULT_NODE_LIFETIME, CAError
from konorkestra.center.context import CenterContext
from konorkestra.center.datadir import open_data_dir
from konorkestra.center.enroll import EnrollmentService, TokenHasher
from konorkestra.center.ingest import SourceUnavailable, build_ingest
from konorkestra.center.metrics import CenterMetrics
from konorkestra.center.releases import Releaser
from konorkestra.center.retention import DEFAULT_RETENTION, ReportPruner
from konorkestra.center.routes.agent import install_agent_api
from konorkestra.center.routes.enroll import EnrollmentRoutes
from konorkestra.center.routes.enroll import routes as enrollment_routes
from konorkestra.center.store import StoreUnavailable
from konorkestra.center.store.migrations import SchemaTooNew
from konorkestra.center.tls import CenterTLS, ClientIdentityMiddleware, tls_self_test_route
from konorkestra.trust import DEFAULT_FRESHNESS_TTL, KeyStorageError, TrustError


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
    node's view needs stay longer; see :mod:`konorkestra.center.retention`).
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
        hasher = TokenHasher.load_or_create(data / "pki" / "enroll-hmac.key")
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
    ctx = CenterContext(
        engine=opened.engine,
        trust_root=opened.trust_root,
        releaser=releaser,
        ingest=ingest,
        services=[ingest],
        extra_routes=[
            *enrollment_routes(EnrollmentRoutes(enrollment, center_tls.creds.anchor_pem)),
            tls_self_test_route(),
        ],
        metrics=metrics,
        repo=repo,
        branch=branch,
    )
    # Agent API (issue 6): long-poll wake-ups on new Releases. Agent routes fail
    # closed (401) without a verified client certificate.
    install_agent_api(
        ctx, timestamp_signers=[opened.signers["timestamp"]], freshness_ttl=freshness_ttl
    )
    ctx.services.append(ReportPruner(opened.engine, retention=report_retention, metrics=metrics))
    app = create_app(ctx)
    app.add_middleware(ClientIdentityMiddleware, trust_domain=trust_domain, authorizer=enrollment)
    return Built(app, ctx, opened.new_admin_token, opened.data.admin_token, center_tls)
