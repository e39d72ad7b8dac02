"""kill -9 a real agent while it applies a new Release, cycle after cycle: old or new, never torn.

A real TLS Center and a real ``konorkestra agent run``. Each cycle pushes a new
``payments-common`` version to the Center's repository and SIGKILLs the agent
at one of four moments of the delivery (chosen at random, seed printed): when
the Center has the Release, when the agent's long-poll returns with it, when
the agent has checked the freshness statement (it then verifies, fetches and
commits), or right after it logs the commit. The restarted agent's first
answer must name the old or the new Release, carry exactly that Release's
config, and never a sequence below the highest one it served before; then it
must converge to the newest. (``tests/agent/test_crash.py`` does the same for
the store alone, at every step, hundreds of times.)
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.agents import AgentProcess, TlsCenter
from tests.helpers.configrepo import payments_common, seeded
from tests.helpers.git import WorkRepo
from tests.helpers.poll import wait_for

pytestmark = pytest.mark.slow
CYCLES = int(os.environ.get("KONORKESTRA_KILL9_CYCLES", "10"))
MOMENTS = (
    "center-has-it",
    "the Center answered: 1 release",
    "the Center has news",
    "committed payments-",
)

GROUP = """\
apiVersion: konorkestra.io/v1
kind: Group
metadata: {{name: payments}}
spec:
  configSets: [payments-common@{version}]
  policy: all-at-once
"""


def currency(version: int) -> str:
    return f"K{version:02d}"


def push(work: WorkRepo, version: int) -> None:
    work.write("configsets/payments-common.yaml", payments_common(version, currency(version)))
    work.write("groups/payments.yaml", GROUP.format(version=version))
    work.commit(f"payments-common v{version}")
    work.push()


class LogTail:
    """New lines of a growing log file, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size

    def has(self, marker: str) -> bool:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            return marker in f.read().decode(errors="replace")


def first_answer(agent: AgentProcess) -> dict[str, Any]:
    """The restarted agent's first successful ``get`` (the stale socket file may linger)."""

    def ask() -> dict[str, Any] | None:
        assert agent.proc is not None and agent.proc.poll() is None, agent.log.read_text()[-3000:]
        try:
            reply = agent.get("payments")
        except (OSError, ValueError):
            return None
        return reply if reply.get("ok") else None

    answer: dict[str, Any] = wait_for(ask, timeout=30, interval=0.01, what="the restarted agent")
    return answer


def test_kill9_during_apply_leaves_old_or_new_and_converges(tmp_path: Path) -> None:
    seed = int(os.environ.get("KONORKESTRA_KILL9_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    print(f"\nkill -9 loop: {CYCLES} cycles, seed {seed}")
    bare, work = seeded(tmp_path)
    center = TlsCenter(tmp_path / "center", repo=bare).start()
    agent = AgentProcess(tmp_path / "node1", center)
    started = time.monotonic()
    try:
        first = wait_for(lambda: center.latest("payments"), timeout=30, what="a release")
        agent.join(center.join_token("payments")).start()
        wait_for(lambda: agent.serves(first["id"], "payments"), timeout=30, what="first release")
        served = agent.get("payments")
        configs = {first["id"]: served["config"]}  # what each Release's config is, once seen
        currencies = {first["id"]: served["config"]["payments-common"]["currency_default"]}
        high = served["sequence"]
        old = first
        moments: list[str] = []
        outcomes = {"old": 0, "new": 0}
        for cycle in range(CYCLES):
            version = cycle + 2
            moment = rng.choice(MOMENTS)
            moments.append(moment)
            tail = LogTail(agent.log)
            push(work, version)
            floor = old["sequence"]
            new = wait_for(
                lambda f=floor: (r := center.latest("payments")) and r["sequence"] > f and r,
                timeout=30, interval=0.005, what=f"the release of v{version}",
            )  # fmt: skip
            currencies[new["id"]] = currency(version)
            if moment != "center-has-it":
                # The agent may get past this moment before it is seen: then it dies later.
                done = f"committed {new['id']}"
                wait_for(lambda t=tail, m=moment, d=done: t.has(m) or t.has(d),
                         timeout=30, interval=0.001, what=moment)  # fmt: skip
            agent.stop(signal.SIGKILL)

            agent.start()
            reply = first_answer(agent)
            rid = reply["release"]
            assert rid in (old["id"], new["id"]), f"cycle {cycle} ({moment}): serves {rid}"
            outcomes["new" if rid == new["id"] else "old"] += 1
            assert reply["sequence"] >= high, f"cycle {cycle}: {reply['sequence']} < {high}"
            got = reply["config"]["payments-common"]["currency_default"]
            assert got == currencies[rid], f"cycle {cycle}: {rid} torn: currency {got}"
            assert configs.setdefault(rid, reply["config"]) == reply["config"], f"{rid} torn"

            wait_for(lambda r=new: agent.serves(r["id"], "payments"), timeout=30,
                     what=f"cycle {cycle}: convergence to {new['id']}")  # fmt: skip
            reply = agent.get("payments")
            assert configs.setdefault(new["id"], reply["config"]) == reply["config"]
            assert reply["config"]["payments-common"]["currency_default"] == currency(version)
            high, old = reply["sequence"], new
        assert "Traceback" not in agent.log.read_text()
        print(f"moments {moments}; after restart {outcomes}; {time.monotonic() - started:.1f}s")
    finally:
        agent.stop()
        center.stop()
