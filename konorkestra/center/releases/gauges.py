"""The ``konorkestra_rollout_*`` gauges: each Group's latest Release, counted at scrape time.

Example::

    ctx.metrics.registry.register(RolloutCollector(ctx.engine))
    # konorkestra_rollout_nodes{group="checkout",state="committed"} 3.0
    # konorkestra_rollout_processes{group="checkout",ack="failed"} 1.0

Invariants:

* Computed when ``/metrics`` is scraped, from
  :func:`~konorkestra.center.releases.convergence_store.latest_convergence`
  (rules C1–C8), so a scrape never shows counts older than the store; the
  ``/metrics`` route renders off the event loop.
* Label cardinality is bounded by the number of Groups: ``state`` is one of
  targeted, committed, behind, refused, stale; ``ack`` one of applied, failed.
* A store error while counting leaves these gauges out of that scrape (logged);
  the Center's other metrics are still served.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from konorkestra.center.releases.convergence_store import latest_convergence

log = logging.getLogger(__name__)
NODE_GAUGE_STATES = ("targeted", "committed", "behind", "refused", "stale")
ACKS = ("applied", "failed")


class RolloutCollector(Collector):
    """Yields ``konorkestra_rollout_nodes`` and ``konorkestra_rollout_processes``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without samples: registering reads nothing from the store."""
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        nodes, procs = self._families()
        try:
            counted = latest_convergence(self.engine)
        except Exception:  # a scrape must not fail for the store: leave these out
            log.warning("rollout gauges: could not read the store", exc_info=True)
            return
        for c in counted:
            group = str(c.target.group)
            for state in NODE_GAUGE_STATES:
                nodes.add_metric([group, state], float(getattr(c.nodes, state)))
            for ack in ACKS:
                procs.add_metric([group, ack], float(getattr(c.processes, ack)))
        yield nodes
        yield procs

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        nodes = GaugeMetricFamily(
            "konorkestra_rollout_nodes",
            "Nodes per state for each Group's latest Release (targeted, committed, behind, "
            "refused, stale).",
            labels=["group", "state"],
        )
        procs = GaugeMetricFamily(
            "konorkestra_rollout_processes",
            "Processes per ack (applied, failed) of each Group's latest Release.",
            labels=["group", "ack"],
        )
        return nodes, procs
