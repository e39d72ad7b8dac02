"""A Center SIGKILLed during a bake finishes the rollout with the bake time that was left.

The real fleet of :mod:`tests.e2e.rolloutfleet` (a Center, ten agent processes, the
checkout app on three nodes). The canary's bake is long enough for the Center to be
killed with SIGKILL in it and started again on the same data directory and port well
before it ends (docs/guide/rollouts.md, rules S1/S3: deadlines are absolute times in
the store). Then:

* the restarted Center shows the same rollout, still baking, with the same
  ``bake_until``; the bake ends at that time, not a whole bake after the restart,
  and no step is started, baked or waved twice;
* the rollout finishes (50 %, then 100 %) and no Release is delivered twice or out
  of order: each agent's own log of committed Releases, each node's
  ``node.release_applied`` audit events and each app's applied Releases are
  strictly increasing, without repeats.

The agents retry at most every second (``backoff_max``), so they find the new
Center quickly; that changes how soon they reconnect, not what they are told.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from konorkestra.demo import CenterHandle
from tests.e2e.rolloutfleet import (
    NODES,
    Fleet,
    Observer,
    assert_in_order,
    assert_within_steps,
    at,
    names,
    open_fleet,
    policy,
    rollout_events,
    steady_wave,
)

pytestmark = pytest.mark.slow
BAKE = 8
"""The canary's bake in seconds: the Center is killed in it and is back well before it ends."""
LATE = dt.timedelta(seconds=3)
"""How long after ``bake_until`` the restarted Center may take to end the bake."""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with open_fleet(tmp_path_factory.mktemp("restart"), agent_toml="backoff_max = 1.0\n") as f:
        yield f


def kill(center: CenterHandle) -> None:
    """SIGKILL the Center's process group (it runs in a session of its own) and reap it."""
    assert center.proc.popen is not None
    os.killpg(center.proc.pid, signal.SIGKILL)
    center.proc.popen.wait(timeout=10)
    center.stop()  # the process is gone: this only drops the HTTP client


def restart(center: CenterHandle, port: int) -> None:
    """``konorkestra center`` again, same data directory, same port (agents know its URL)."""
    center.proc.argv += ["--listen", f"127.0.0.1:{port}"]
    center.start()


def test_a_center_killed_during_a_bake_finishes_the_rollout_with_the_time_left(
    fleet: Fleet,
) -> None:
    mark = fleet.audit_mark()
    port = urlsplit(fleet.center.url).port
    assert port is not None
    with Observer(fleet) as obs:
        new = fleet.release("(d) restart", policy(bakes=(BAKE, 1)))
        seq = new["sequence"]
        st, on = steady_wave(fleet, seq, 0, "baking")
        assert on == names(fleet.wave(0))
        until = at(st["bake_until"])

        with obs.outage():
            kill(fleet.center)
            killed_at = dt.datetime.now(dt.UTC)
            assert fleet.on(seq) == names(fleet.wave(0)), "agents keep serving what they have"
            restart(fleet.center, port)
        back = fleet.status()
        back_at = dt.datetime.now(dt.UTC)
        assert back_at < until, "the Center took longer than the bake to come back"

        assert (back["release"]["id"], back["phase"], back["step"]) == (new["id"], "baking", 0)
        assert at(back["bake_until"]) == until, "bake_until moved across the restart"
        assert 0 < back["bake_left_seconds"] <= (until - killed_at).total_seconds() + 0.1
        assert back["nodes"]["targeted"] == 1 and fleet.on(seq) == names(fleet.wave(0))

        fleet.wait_status(
            lambda s: s["release"]["id"] == new["id"] and s["phase"] == "completed",
            "(d) the rollout to complete after the restart",
        )
        fleet.wait_on(seq, names(fleet.agents), "every node on the new Release")
    assert_within_steps(obs, fleet, seq)
    assert any(s["release"]["id"] == new["id"] and s["step"] == 1 for _, s in obs.samples)

    # One decision per move, across the restart: nothing started, waved or baked twice.
    events = rollout_events(fleet, mark, new["id"])
    steps = {
        kind: [e["details"]["step"] for e in events if e["action"] == kind]
        for kind in ("rollout.started", "wave.started", "bake.started", "bake.done")
    }
    assert steps == {
        "rollout.started": [0],
        "wave.started": [0, 1, 2],
        "bake.started": [0, 1, 2],
        "bake.done": [0, 1, 2],
    }, steps
    assert events[-1]["action"] == "rollout.completed"
    [canary_baked] = [e for e in events if e["action"] == "bake.done" and e["details"]["step"] == 0]
    baked_at = at(canary_baked["details"]["at"])
    assert until <= baked_at < until + LATE, (until, baked_at)
    wave_nodes = [len(e["details"]["nodes"]) for e in events if e["action"] == "wave.started"]
    assert wave_nodes == [1, 4, 5] and sum(wave_nodes) == NODES

    # No Release delivered twice or out of order: the agents' logs, the audit, the apps.
    assert_in_order(fleet, mark)
    for node, seqs in fleet.commits().items():
        assert seqs.count(seq) == 1 and seqs[-1] == seq, (node, seqs)
    for node, seqs in fleet.applied_events(mark).items():
        assert seqs == [seq], (node, seqs)
    for node, seqs in fleet.app_sequences().items():
        assert seqs == sorted(set(seqs)) and seqs[-1] == seq, (node, seqs)
