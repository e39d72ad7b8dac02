"""A sample application using the Konorkestra Python SDK.

Usage::

    python examples/apps/checkout_app.py [--socket PATH] [--group checkout] [--name NAME]

It prints its config when it starts and again on every new release, one line
per event, so people and end-to-end tests can follow it:

    start   release=checkout-3 sequence=3 source=agent config={...}
    applied release=checkout-4 sequence=4 config={...}
    failed  release=checkout-5 error="BadReload: ..." keeping=checkout-4

**Demo trigger.** A release in which any ConfigSet's data has
``"failBadReload": true`` at its top level makes the reload callback raise
``BadReload``. The SDK then acks that release ``failed`` with the error text
(which rollout guards see) and the app keeps running on the config it had.

**Health it reports.** At start and after each applied release the app
reports the two app metrics rollout guards read (``error_rate``,
``latency_p99_ms``), measured on the config it now runs: here simulated, the
``simulatedErrorRate`` (default 0.0) and ``simulatedLatencyP99Ms`` (default
120) values of any ConfigSet, so a demo can make a guard trip by releasing a
high value. A Policy that guards on a metric waits for every exposed process
to report it (missing data never passes). It exits cleanly on SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

import konorkestra.sdk as sdk


class BadReload(Exception):
    """Raised when a release asks this app to fail its reload (the demo trigger)."""


def _compact(cfg: sdk.Config) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))


def _setting(cfg: sdk.Config, key: str, default: Any) -> Any:
    for data in cfg.values():
        if hasattr(data, "get") and key in data:
            return data[key]
    return default


class CheckoutApp:
    """Holds the config this app runs on: only releases it accepted."""

    def __init__(self, client: sdk.Client, group: str) -> None:
        self.client = client
        self.group = group
        self._lock = threading.Lock()
        self.config = client.get_config(group)  # fails fast: NotFoundError, UnavailableError
        with self._lock:
            # since=: a release landing between the read above and the registration
            # is then delivered (old = this config), not missed. The lock holds back
            # that reload until this start line is out.
            client.watch(group, self.reload, since=self.config)
            print(
                f"start   release={self.config.release} sequence={self.config.sequence} "
                f"source={self.config.source} config={_compact(self.config)}",
                flush=True,
            )
            self.report_health(self.config)

    def reload(self, new: sdk.Config, old: sdk.Config | None) -> None:
        with self._lock:
            self._reload(new)

    def _reload(self, new: sdk.Config) -> None:
        if _setting(new, "failBadReload", False) is True:
            print(
                f'failed  release={new.release} error="BadReload: failBadReload is set" '
                f"keeping={self.config.release}",
                flush=True,
            )
            raise BadReload("failBadReload is set")
        self.config = new
        print(
            f"applied release={new.release} sequence={new.sequence} config={_compact(new)}",
            flush=True,
        )
        self.report_health(new)

    def report_health(self, cfg: sdk.Config) -> None:
        """What a real service would measure on ``cfg``; simulated here (see the module doc)."""
        self.client.report(self.group, "error_rate", float(_setting(cfg, "simulatedErrorRate", 0)))
        latency = float(_setting(cfg, "simulatedLatencyP99Ms", 120))
        self.client.report(self.group, "latency_p99_ms", latency)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--socket", help="agent socket (default: KONORKESTRA_SOCKET or standard)")
    parser.add_argument("--group", default="checkout")
    parser.add_argument("--name", default="checkout-app")
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with sdk.connect(args.socket, name=args.name) as client:
        try:
            CheckoutApp(client, args.group)
        except sdk.SdkError as exc:
            print(f"error   {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            return 1
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
