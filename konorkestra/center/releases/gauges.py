"""The ``konorkestra_rollout_*`` gauges: each Group's latest Release, counted at scrape time.

Example::

    ctx.metrics.registry.register(RolloutCollector(ctx.engine))
    # konorkestra_rollout_nodes{group="checkout",state="committed"} 3.0
    # konorkestra_rollout_processes{group="checkout",ack="failed"} 1.0
    # konorkestra_rollout_phase{group="checkout",phase="baking"} 1.0   (0.0 for the others)
    # konorkestra_rollout_step{group="checkout"} 0.0
    # konorkestra_rollout_guard_value{group="checkout",signal="failed_acks"} 0.0

Invariants:

* Computed when ``/metrics`` is scraped, from
  :func:`~konorkestra.center.releases.convergence_store.latest_convergence`
  (rules C1–C8), so a scrape never shows counts older than the store; the
  ``/metrics`` route renders off the event loop.
* Label cardinality is bounded by the number of Groups: ``state`` is one of
  targeted, committed, behind, refused, stale; ``ack`` one of applied, failed;
  ``phase`` one of the rollout phases (every phase is listed, 1 for the
  current one); ``signal`` one of the Policy's guards.
* Phase, step and guard readings are those of each Group's current rollout
  as the runner last stored them (a guard with no value yet has no sample).
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
from konorkestra.center.rollouts.store import current_all
from konorkestra.center.store.engine import reader
from konorkestra.rollout import Phase

log = logging.getLogger(__name__)
NODE_GAUGE_STATES = ("targeted", "committed", "behind", "refused", "stale")
ACKS = ("applied", "failed")


class RolloutCollector(Collector):
    """Yields ``konorkestra_rollout_nodes``, ``_processes``, ``_phase``, ``_step`` and
    ``_guard_value``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without samples: registering reads nothing from the store."""
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        nodes, procs, phase, step, guard = self._families()
        try:
            counted = latest_convergence(self.engine)
            with reader(self.engine).connect() as conn:
                rollouts = current_all(conn)
        except Exception:  # a scrape must not fail for the store: leave these out
            log.warning("rollout gauges: could not read the store", exc_info=True)
            return
        for name in sorted(rollouts):
            current = rollouts[name].state
            for each in Phase:
                phase.add_metric([name, each.value], 1.0 if current.phase is each else 0.0)
            step.add_metric([name], float(current.step))
            for reading in rollouts[name].readings:
                if reading.value is not None:
                    guard.add_metric([name, reading.signal], float(reading.value))
        yield phase
        yield step
        yield guard
        for c in counted:
            group = str(c.target.group)
            for state in NODE_GAUGE_STATES:
                nodes.add_metric([group, state], float(getattr(c.nodes, state)))
            for ack in ACKS:
                procs.add_metric([group, ack], float(getattr(c.processes, ack)))
        yield nodes
        yield procs

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
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
        phase = GaugeMetricFamily(
            "konorkestra_rollout_phase",
            "1 for the phase each Group's current rollout is in, 0 for the others.",
            labels=["group", "phase"],
        )
        step = GaugeMetricFamily(
            "konorkestra_rollout_step",
            "The 0-based step (wave) of each Group's current rollout.",
            labels=["group"],
        )
        guard = GaugeMetricFamily(
            "konorkestra_rollout_guard_value",
            "Each guard's last reading in each Group's current rollout (compare with the Policy's "
            "threshold).",
            labels=["group", "signal"],
        )
        return nodes, procs, phase, step, guard
