"""``konorctl rollout status G --watch`` piped, read over two changes, then Ctrl-C.

A rollout watch waits for the rollout to end, and its exit code says how it
ended (0 completed, 1 rolled back or aborted). So Ctrl-C is not a success
here: it exits 130 (128 + SIGINT, as a shell reports it), unlike ``groups
--watch``, which only observes and exits 0 (``test_groups_cmd.py``).
"""

from __future__ import annotations

import signal
from itertools import pairwise

import pytest

from tests.cli.test_rollout_cli import (
    Fleet,
    exited,
    fleet,
    konorctl,
    release_2_rollout,
    rollout_in,
    watch,
)

__all__ = ["fleet"]  # the fixture, shared with test_rollout_cli.py


@pytest.mark.slow
def test_a_piped_rollout_watch_prints_each_change_and_ctrl_c_exits_130(fleet: Fleet) -> None:
    stack, repo, center = fleet
    release_2_rollout(repo, center)
    watching = watch(stack, center)
    first, _ = watching.wait_line(r"checkout: checkout-2-\S+ \(seq 2\): awaiting_approval",
                                  timeout=20)  # fmt: skip

    approved = konorctl(center, "rollout", "approve", "checkout", "--reason", "canary clean")
    assert approved.returncode == 0, approved.stderr
    rollout_in(center, "baking")
    second, _ = watching.wait_line(r"checkout: checkout-2-\S+ \(seq 2\): baking", timeout=20,
                                   start=first + 1)  # fmt: skip
    said = [line.text.split(" ", 1)[1] for line in watching.lines[first : second + 1]]
    assert all(a != b for a, b in pairwise(said)), said  # a line per change, no repeats

    assert watching.popen is not None
    watching.popen.send_signal(signal.SIGINT)
    assert exited(watching) == 130
    assert "Traceback" not in watching.output() and "Aborted" not in watching.output()
