"""Signed freshness statements for nodes, re-sent while still recent and still true.

Example::

    fresh = FreshnessSigner(timestamp_signers, ttl=dt.timedelta(minutes=10))
    bundle = fresh.freshness(node.id, latest_rows)    # signed by the timestamp role

Invariants:

* Every statement is for one node and lists the latest Release of every Group
  in its scope (:func:`konorkestra.center.releases.desired.freshness_entries`),
  signed by the timestamp role with the configured TTL.
* Whether the last statement is re-sent or a new one signed is decided by
  :func:`konorkestra.center.agentapi.freshreuse.may_resend` (rules F1–F6): the
  same latest Releases and younger than :attr:`FreshnessSigner.reuse` seconds
  of the monotonic clock (so its ``issuedAt`` never goes backwards).
* At most :data:`~konorkestra.center.agentapi.freshreuse.MEMORY_CAP` nodes'
  statements are kept; past that the memory starts over.
* A statement's bytes are those of ``sign_freshness(FreshnessStatement.create(…))``
  (what the agent verifies), made from one
  :class:`~konorkestra.trust.freshtemplate.FreshnessTemplate` per (latest
  Releases, ``issuedAt`` second): a fan-out that wakes N nodes of a Group builds
  the canonical payload once and signs N times (one signature per node and key).
  At most :data:`TEMPLATES` templates are kept; past that they start over.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from konorkestra.center.agentapi.freshreuse import (
    LatestKey,
    Sent,
    latest_key,
    may_resend,
    must_forget,
)
from konorkestra.center.releases.desired import LatestRow, freshness_entries
from konorkestra.trust import DEFAULT_FRESHNESS_TTL, SigningKey
from konorkestra.trust.freshtemplate import FreshnessTemplate

TEMPLATES = 64
"""How many statement templates (latest Releases x second) are kept at most."""


@dataclass
class FreshnessSigner:
    """Signs (and for a while re-sends) each node's freshness statement."""

    timestamp_signers: Sequence[SigningKey]
    ttl: dt.timedelta = DEFAULT_FRESHNESS_TTL
    reuse: float = 30.0
    """Seconds a node's statement is re-sent while its Groups' latest Releases stay."""
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    _fresh: dict[str, Sent] = field(default_factory=dict, repr=False)
    _templates: dict[tuple[LatestKey, dt.datetime], FreshnessTemplate] = field(
        default_factory=dict, repr=False
    )

    def sign(self, node: str, latest: list[LatestRow], key: LatestKey | None = None) -> bytes:
        """A new statement for ``node`` listing ``latest`` (``key``: its :func:`latest_key`)."""
        now = self.clock().astimezone(dt.UTC).replace(microsecond=0)
        at = (latest_key(latest) if key is None else key, now)
        template = self._templates.get(at)
        if template is None:
            template = FreshnessTemplate.create(
                latest=freshness_entries(latest), now=now, ttl=self.ttl
            )
            if len(self._templates) >= TEMPLATES:
                self._templates.clear()
            self._templates[at] = template
        return template.sign(node, self.timestamp_signers)

    def freshness(self, node: str, latest: list[LatestRow]) -> bytes:
        """The node's freshness bundle: the last one while still recent and still true."""
        key = latest_key(latest)
        now = time.monotonic()
        last = self._fresh.get(node)
        if last is not None and may_resend(last, node, key, now=now, reuse=self.reuse):
            return last.bundle
        signed = self.sign(node, latest, key)
        if must_forget(len(self._fresh)):
            self._fresh.clear()
        self._fresh[node] = Sent(node, key, now, signed)
        return signed
