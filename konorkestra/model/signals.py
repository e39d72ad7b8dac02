"""The guard signals a Policy may watch during a rollout, defined in one place.

Example::

    >>> from konorkestra.model.signals import GUARD_SIGNALS, breaches
    >>> GUARD_SIGNALS["error_rate"].comparison
    'max'
    >>> breaches("error_rate", value=0.07, threshold=0.05)
    True

Invariants:

* ``max`` signals breach when the observed value rises *above* the threshold;
  ``min`` signals breach when it falls *below* it. A value equal to the
  threshold never breaches.
* This table is the only list of known signals: the JSON Schema, validation,
  the docs and the rollout engine all read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Comparison = Literal["max", "min"]


@dataclass(frozen=True)
class Signal:
    """A named rollout health signal and how its threshold is compared."""

    name: str
    comparison: Comparison
    unit: str
    description: str


GUARD_SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal("error_rate", "max", "ratio 0..1", "share of requests failing on updated nodes"),
        Signal("failed_acks", "max", "count", "applications that reported a failed reload"),
        Signal("latency_p99_ms", "max", "milliseconds", "99th percentile request latency"),
        Signal("stale_nodes", "max", "count", "nodes on the release whose freshness expired"),
        Signal("ack_success_rate", "min", "ratio 0..1", "share of acks that report applied"),
    )
}


def breaches(signal: str, *, value: float, threshold: float) -> bool:
    """True when ``value`` violates the guard ``signal`` at ``threshold``."""
    comparison = GUARD_SIGNALS[signal].comparison
    return value > threshold if comparison == "max" else value < threshold
