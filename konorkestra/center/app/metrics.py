"""Prometheus metrics of one Center app, in a registry of its own.

Invariants:

* Each :class:`CenterMetrics` owns a fresh :class:`CollectorRegistry`, so two
  apps in one process (tests) never share or clash on metric names.
* Metric names are stable: dashboards and alerts depend on them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class CenterMetrics:
    """The Center's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "konorkestra_center_http_requests_total",
            "HTTP requests served, by method, route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.commits = Counter(
            "konorkestra_center_commits_total",
            "Commits ingested, by outcome.",
            ["status"],
            registry=r,
        )
        self.releases = Counter(
            "konorkestra_center_releases_total",
            "Releases created, by origin (ingest, manual, or rollback: signed by the rollout "
            "runner).",
            ["origin"],
            registry=r,
        )
        self.ingest_seconds = Histogram(
            "konorkestra_center_ingest_seconds",
            "Time to ingest one commit (load, validate, resolve, sign, store).",
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.ingest_errors = Counter(
            "konorkestra_center_ingest_errors_total",
            "Ingest passes that failed for a reason other than invalid content.",
            registry=r,
        )
        self.last_ingest = Gauge(
            "konorkestra_center_last_ingest_timestamp_seconds",
            "Unix time of the last completed ingest pass.",
            registry=r,
        )
        self.rollout_decisions = Counter(
            "konorkestra_rollout_decisions_total",
            "Rollout decisions of this Center's runner, by outcome (changed: stored a move; "
            "unchanged: nothing to store; retried: the store moved meanwhile; failed).",
            ["outcome"],
            registry=r,
        )
        self.rollout_decision_seconds = Histogram(
            "konorkestra_rollout_decision_seconds",
            "Wall time of one rollout decision: read the fleet, decide, store.",
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.reports_pruned = Counter(
            "konorkestra_center_node_reports_pruned_total",
            "Rows of node_reports deleted by retention (--report-retention).",
            registry=r,
        )

    def render(self) -> bytes:
        out: bytes = generate_latest(self.registry)
        return out
