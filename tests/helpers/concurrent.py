"""Run calls at the same moment from several threads, for races the store must win.

Example::

    outcomes = at_once(create_release, [("checkout",), ("checkout",)])
    assert sorted(outcomes) == [1, 2]        # an exception would be in the list instead
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


def at_once(call: Callable[..., Any], arguments: Sequence[tuple[Any, ...]]) -> list[Any]:
    """``call(*args)`` for each ``args``, all released together; results or exceptions."""
    barrier = threading.Barrier(len(arguments))
    lock = threading.Lock()
    outcomes: list[Any] = []

    def run(args: tuple[Any, ...]) -> None:
        barrier.wait(10)
        try:
            result: Any = call(*args)
        except Exception as exc:  # a lost race must show up in the caller's assertion
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(a,)) for a in arguments]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == len(arguments), "a thread did not finish within 60 s"
    return outcomes
