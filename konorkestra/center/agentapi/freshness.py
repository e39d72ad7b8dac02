"""Signed freshness statements for nodes, re-sent while still recent and still true.

Example::

    fresh = FreshnessSigner(timestamp_signers, ttl=dt.timedelta(minutes=10))
    bundle = fresh.freshness(node.id, latest_rows)    # signed by the timestamp role

Invariants:

* Every statement is for one node and lists the latest Release of every Group
  in its scope (:func:`konorkestra.center.releases.desired.freshness_entries`),
  signed by the timestamp role with the configured TTL.
* A node's statement is re-sent unchanged for at most :attr:`FreshnessSigner.reuse`
  seconds while its Groups' latest Releases stay the same (so its ``issuedAt``
  never goes backwards); otherwise a new one is signed.
* At most 100,000 nodes' statements are kept; past that the memory starts over.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from konorkestra.center.releases.desired import LatestRow, freshness_entries
from konorkestra.trust import DEFAULT_FRESHNESS_TTL, FreshnessStatement, SigningKey, sign_freshness

Key = tuple[tuple[str, int, str], ...]


@dataclass
class FreshnessSigner:
    """Signs (and for a while re-sends) each node's freshness statement."""

    timestamp_signers: Sequence[SigningKey]
    ttl: dt.timedelta = DEFAULT_FRESHNESS_TTL
    reuse: float = 30.0
    """Seconds a node's statement is re-sent while its Groups' latest Releases stay."""
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    _fresh: dict[str, tuple[Key, float, bytes]] = field(default_factory=dict, repr=False)

    def sign(self, node: str, latest: list[LatestRow]) -> bytes:
        statement = FreshnessStatement.create(
            node=node, latest=freshness_entries(latest), now=self.clock(), ttl=self.ttl
        )
        return sign_freshness(statement, self.timestamp_signers)

    def freshness(self, node: str, latest: list[LatestRow]) -> bytes:
        """The node's freshness bundle: the last one while still recent and still true."""
        key: Key = tuple((r.group, r.sequence, r.digest) for r in latest)
        now = time.monotonic()
        last = self._fresh.get(node)
        if last is not None and last[0] == key and now - last[1] < self.reuse:
            return last[2]
        signed = self.sign(node, latest)
        if len(self._fresh) >= 100_000:
            self._fresh.clear()
        self._fresh[node] = (key, now, signed)
        return signed
