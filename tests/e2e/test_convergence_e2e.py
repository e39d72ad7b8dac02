"""How far a Release reached its Group, from real agents and a real app's failed reload.

Two real agents serve ``checkout``; a real app (the Python SDK) on one of them raises in
its ``on_change`` for a config with ``failBadReload``. The Center's convergence view of
that Release must say: both nodes committed it, one process applied nothing and failed,
one node has a failed ack — in the API, in ``konorctl releases`` and in ``/metrics``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from konorkestra.demo import AgentHandle, CenterHandle, ConfigRepo, Proc, Stack, edits, examples_dir
from konorkestra.demo.procs import wait_until

pytestmark = pytest.mark.slow

APP = """
import signal, sys, threading
import konorkestra.sdk as sdk

client = sdk.connect(sys.argv[1], name="convergence-app")
print("start", client.get_config("checkout").release, flush=True)

@client.on_change("checkout")
def changed(new, old):
    print("change", new.release, flush=True)
    if new["checkout-flags"].get("failBadReload"):
        raise RuntimeError("failBadReload is set")

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
client.close()
"""


def all_at_once(group_yaml: str) -> str:
    """``group_yaml`` with the all-at-once Policy instead of the example canary.

    This test is about convergence, not rollouts: every node must get the bad
    Release, and the canary's ``failed_acks`` guard would roll it back.
    """
    assert "policy: canary" in group_yaml
    return group_yaml.replace("policy: canary", "policy: all-at-once")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Stack, ConfigRepo, CenterHandle, list[AgentHandle]]]:
    repo = ConfigRepo.create(tmp_path, seed=examples_dir() / "config-repo")
    repo.write(edits.GROUP_FILE, all_at_once((repo.work / edits.GROUP_FILE).read_text()))
    repo.commit("checkout: all at once")
    repo.push()
    with Stack(tmp_path) as stack:
        center = stack.center(repo.bare)
        center.wait_commit(repo.head())
        agents = []
        for name in ("node-a", "node-b"):
            agent = stack.agent(name)
            agent.join(center, center.create_token(["checkout"]))
            agent.start()
            agents.append(agent)
        for agent in agents:
            agent.wait_committed("checkout", 1)
        yield stack, repo, center, agents


def test_a_failed_reload_shows_in_the_releases_convergence(
    fleet: tuple[Stack, ConfigRepo, CenterHandle, list[AgentHandle]], tmp_path: Path
) -> None:
    stack, repo, center, agents = fleet
    script = tmp_path / "app.py"
    script.write_text(APP)
    app = Proc(
        "app", [sys.executable, str(script), str(agents[0].socket)],
        log=tmp_path / "app.log", capture=True,
    ).start()  # fmt: skip
    stack.procs.append(app)
    app.wait_line(r"^start ", timeout=20)

    repo.write(edits.FLAGS_FILE, edits.checkout_flags(4, fail_reload=True), append=True)
    repo.write(edits.GROUP_FILE, all_at_once(edits.checkout_group(4)))
    repo.commit("checkout-flags v4: failBadReload")
    repo.push()
    _, change = app.wait_line(r"^change ", timeout=30)
    bad = change.text.split()[1]

    def settled() -> dict[str, Any] | None:
        conv: dict[str, Any] = center.get("/v1/groups/checkout")["convergence"]
        done = conv["nodes"]["committed"] == 2 and conv["processes"]["failed"] == 1
        return conv if conv["release"] == bad and done else None

    conv = wait_until(settled, timeout=30, what="convergence of the bad release")
    assert conv["latest"] is True and conv["partial"] is False
    assert conv["nodes"] == {
        "targeted": 2, "committed": 2, "behind": 0, "newer": 0,
        "refused": 0, "stale": 0, "failed": 1,
    }  # fmt: skip
    assert conv["processes"]["applied"] == 0
    assert center.get(f"/v1/releases/{bad}")["convergence"] == conv
    rollout = center.get("/v1/rollouts/checkout")
    assert rollout["release"]["id"] == bad and rollout["policy"]["strategy"] == "all-at-once"
    assert rollout["nodes"]["targeted"] == conv["nodes"]["targeted"]

    listed = json.loads(center.konorctl("releases", "--group", "checkout", "-o", "json").stdout)
    [shown] = [r for r in listed if r["id"] == bad]
    assert shown["convergence"] == conv
    table = center.konorctl("releases", "--group", "checkout", columns=200).stdout
    assert "2/2 committed, 0 acked, 1 failed" in table, table

    samples = {
        (s.name, *sorted(s.labels.values())): s.value
        for family in text_string_to_metric_families(center.http.get("/metrics").text)
        for s in family.samples
    }
    assert samples[("konorkestra_rollout_nodes", "checkout", "committed")] == 2
    assert samples[("konorkestra_rollout_processes", "checkout", "failed")] == 1
