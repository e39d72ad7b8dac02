"""When a node's signed freshness statement may be re-sent unchanged: a pure rule.

Example::

    >>> from konorkestra.center.agentapi.freshreuse import Sent, may_resend
    >>> last = Sent("node-01", (("checkout", 4, "sha256:" + "ab" * 32),), at=100.0, bundle=b"..")
    >>> may_resend(last, "node-01", last.latest, now=110.0, reuse=30.0)
    True
    >>> may_resend(last, "node-01", last.latest, now=130.0, reuse=30.0)
    False

:class:`~konorkestra.center.agentapi.freshness.FreshnessSigner` keeps the last
statement per node, reads the monotonic clock and signs; this module decides.
Re-sending saves a signature per long-poll answer, and a statement re-sent
while still true keeps its ``issuedAt`` from going backwards. The rules, each
tested by name in ``tests/center/agentapi/test_freshness_reuse.py``:

* **F1** A node that was never sent a statement is signed a new one.
* **F2** The last statement is re-sent unchanged while the latest Releases of
  the node's Groups are exactly those it lists and it is younger than ``reuse``
  seconds.
* **F3** Any change in those latest Releases signs a new statement: another
  sequence or digest, a Group more or less, another order.
* **F4** At ``reuse`` seconds of age or older, a new statement is signed.
* **F5** A statement is one node's: another node's is never re-sent.
* **F6** At most ``cap`` nodes' statements are remembered; when the memory is
  full it starts over (:func:`must_forget`), before the next one is remembered.

Pure: the time is passed in (monotonic seconds); no clock, no signing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from konorkestra.center.releases.desired import LatestRow

LatestKey = tuple[tuple[str, int, str], ...]
"""``(group, sequence, statement digest)`` of each latest Release, in the order listed."""

MEMORY_CAP = 100_000
"""How many nodes' statements are remembered at most (F6)."""


@dataclass(frozen=True)
class Sent:
    """The last statement signed for ``node``: what it listed, when, and its bytes."""

    node: str
    latest: LatestKey
    at: float
    """Monotonic seconds when it was signed."""
    bundle: bytes = field(repr=False)


def latest_key(latest: Iterable[LatestRow]) -> LatestKey:
    """What a statement listing ``latest`` says, as :func:`may_resend` compares it (F3)."""
    return tuple((r.group, r.sequence, r.digest) for r in latest)


def may_resend(
    last: Sent | None, node: str, latest: LatestKey, *, now: float, reuse: float
) -> bool:
    """True when ``last`` may be sent to ``node`` again unchanged (F1–F5)."""
    if last is None or last.node != node:
        return False  # F1, F5
    if last.latest != latest:
        return False  # F3
    return now - last.at < reuse  # F2, F4


def must_forget(remembered: int, cap: int = MEMORY_CAP) -> bool:
    """True when a memory of ``remembered`` statements must start over (F6)."""
    return remembered >= cap
