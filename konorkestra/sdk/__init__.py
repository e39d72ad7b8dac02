"""Konorkestra's Python SDK: live, versioned config from the node's agent.

Example::

    import konorkestra.sdk

    client = konorkestra.sdk.connect(name="checkout-web")
    cfg = client.get_config("checkout")          # an immutable mapping
    timeout = cfg["checkout-api"]["timeoutMs"]   # after the first call: ~0.1 µs
    print(cfg.release, cfg.sequence, cfg.source)  # "checkout-3" 3 "agent"

    @client.on_change("checkout", since=cfg)      # from the config read above
    def reload(new, old):                         # once per release after cfg, in order
        apply_timeouts(new["checkout-api"])       # raise to reject: acked "failed"

    @dataclass
    class Api:
        timeout_ms: int                           # reads "timeoutMs" too
        retries: int = 2

    api = client.bind("checkout", "checkout-api", Api)
    api.value.timeout_ms                          # always the newest valid release

    client.report("checkout", "error_rate", 0.002)
    client.close()                                # or: with connect() as client: ...

The client keeps one connection to the agent on a background thread and an
in-process snapshot of every group it has read, so ``get_config`` is a dict
lookup. It reconnects by itself (jittered back-off) and resumes each watch
after the last release it processed: no release is missed or repeated. If the
agent is unreachable when a group is first read, the last committed release is
read from the agent's data directory (``source == "disk"``) until the agent is
back. asyncio applications use :mod:`konorkestra.sdk.aio`.
"""

from __future__ import annotations

import os

from konorkestra.sdk._internal.bind import Binding
from konorkestra.sdk._internal.client import Client, Watch
from konorkestra.sdk._internal.config import Config
from konorkestra.sdk._internal.errors import (
    BindError,
    NotFoundError,
    SdkError,
    UnavailableError,
)

__all__ = [
    "BindError",
    "Binding",
    "Client",
    "Config",
    "NotFoundError",
    "SdkError",
    "UnavailableError",
    "Watch",
    "connect",
]


def connect(
    socket: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    timeout: float = 5.0,
) -> Client:
    """Connect to the agent (``socket``, else ``KONORKESTRA_SOCKET``, else the default).

    Never fails because the agent is down: the client then serves from
    ``data_dir`` and keeps trying to connect. ``name`` identifies the
    application to the agent; ``timeout`` bounds the first read of a group.
    """
    return Client(socket, name=name, data_dir=data_dir, timeout=timeout)
