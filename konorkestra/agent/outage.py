"""How loudly the agent says that it cannot reach the Center: once per outage, not per retry.

Example::

    outage = Outage()
    level, text = outage.failed("GET /v1/agent/desired: ConnectError: ...", 1.5, now=t)
    log.log(level, "%s", text)               # WARNING the first time, DEBUG after that
    back = outage.recovered(now=t2)          # "reconnected to the Center after 7 failed ..."
    if back:
        log.info("%s", back)

A Center that stops (a deploy, a restart) answers the agent's parked long-poll
with "nothing new" and closes; the agent's next request fails until it is back.
That is routine, so it is one WARNING line and one INFO line, never a traceback
and never a line per retry.

Invariants:

* The first failure of an outage is a WARNING; later ones are DEBUG, except a
  WARNING reminder once every ``remind_every`` seconds while it lasts.
* :meth:`Outage.recovered` returns a line only at the end of an outage (after
  at least one failure), and then starts a new one.
* Pure: no clock, no logging, no I/O; the caller passes ``now`` (monotonic seconds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

REMIND_EVERY = 300.0
"""Seconds between two WARNING lines of one outage."""


@dataclass
class Outage:
    """Consecutive failed attempts to talk to the Center."""

    remind_every: float = REMIND_EVERY
    failures: int = 0
    since: float = 0.0
    warned: float = 0.0

    def failed(self, error: str, retry_in: float, *, now: float) -> tuple[int, str]:
        """One more failed attempt: the log level and line for it."""
        self.failures += 1
        if self.failures == 1:
            self.since = self.warned = now
            return logging.WARNING, (
                f"cannot reach the Center ({error}); serving what this node has, "
                f"retrying with back-off (next in {retry_in:.1f}s)"
            )
        text = (
            f"still cannot reach the Center after {self.failures} attempts in "
            f"{now - self.since:.0f}s ({error}); next in {retry_in:.1f}s"
        )
        if now - self.warned >= self.remind_every:
            self.warned = now
            return logging.WARNING, text
        return logging.DEBUG, text

    def recovered(self, *, now: float) -> str | None:
        """The Center answered: a line to log if that ends an outage, else ``None``."""
        if not self.failures:
            return None
        text = (
            f"reconnected to the Center after {self.failures} failed "
            f"attempt{'s' if self.failures > 1 else ''} ({now - self.since:.1f}s)"
        )
        self.failures = 0
        return text
