"""``konorctl groups [show G] [--watch]`` against a real Center and a real agent.

Before issue 18 there was no ``groups`` command: ``/v1/groups`` was reachable
only with curl. The watch test runs the real CLI in a subprocess, reads two
blocks (the second after a node is revoked) and ends it with SIGINT: exit 0.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from itertools import pairwise

import pytest

from konorkestra.demo import AgentHandle, CenterHandle, ConfigRepo, Proc, Stack, examples_dir
from konorkestra.demo.procs import tool, wait_until
from tests.cli.terminal import Terminal

Fleet = tuple[Stack, CenterHandle, AgentHandle]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """A Center whose checkout Group has Release 1 committed on one agent, node-a."""
    root = tmp_path_factory.mktemp("groups")
    repo = ConfigRepo.create(root, seed=examples_dir() / "config-repo")
    repo.push()
    with Stack(root) as stack:
        center = stack.center(repo.bare)
        center.wait_commit(repo.head())
        agent = stack.agent("node-a")
        agent.join(center, center.create_token(["checkout"]))
        agent.start()
        agent.wait_committed("checkout", 1)
        yield stack, center, agent


def _converged(center: CenterHandle) -> None:
    """Wait until the Center counts node-a on checkout's Release (its report arrived)."""

    def counted() -> bool:
        nodes = center.get("/v1/groups/checkout")["convergence"]["nodes"]
        return bool(nodes["committed"] == 1)

    wait_until(counted, timeout=30, what="node-a's report to reach the Center")


def test_groups_lists_stable_in_flight_phase_nodes_and_convergence(fleet: Fleet) -> None:
    _, center, _ = fleet
    _converged(center)
    shown = center.konorctl("groups", columns=80)
    lines = shown.stdout.splitlines()
    [checkout] = [line for line in lines if re.search(r"\bcheckout\b", line)]
    cells = [c.strip() for c in checkout.split("│")]
    assert cells[1:7] == ["checkout", cells[2], "-", "completed", "1", "1/1"], checkout
    assert cells[2].startswith("checkout-1-")
    header = next(line for line in lines if "group" in line)
    for name in ("stable", "in flight", "phase", "nodes", "converged"):
        assert name in header
    # Piped: one row per line, nothing cut (the release ids are whole).
    release = center.get("/v1/groups/checkout")["latest_release"]["id"]
    assert release in shown.stdout

    listed = json.loads(center.konorctl("groups", "-o", "json").stdout)
    by_name = {g["group"]: g for g in listed}
    assert by_name["checkout"] == {
        "group": "checkout", "stable": release, "in_flight": None, "phase": "completed",
        "step": "1/1", "nodes": 1, "converged": 1, "targeted": 1,
    }  # fmt: skip
    assert by_name["payments"]["nodes"] == 0


def test_groups_show_prints_definition_policy_releases_and_each_node(fleet: Fleet) -> None:
    _, center, agent = fleet
    _converged(center)
    release = center.get("/v1/groups/checkout")["latest_release"]["id"]
    out = center.konorctl("groups", "show", "checkout").stdout
    for text in ("group checkout", "defined by commit", "policy", "canary (strategy canary",
                 "checkout-api v", "checkout-flags v", f"stable      {release}",
                 "in flight   -", "converged   1/1 nodes on", "nodes (1)"):  # fmt: skip
        assert text in out, (text, out)
    [row] = [line for line in out.splitlines() if "node-a" in line]
    assert agent.node_id in row and release in row and "stable" in row

    doc = json.loads(center.konorctl("groups", "show", "checkout", "-o", "json").stdout)
    assert doc["group"]["name"] == "checkout" and doc["rollout"]["phase"] == "completed"
    [node] = doc["nodes"]
    assert node["name"] == "node-a" and [s["group"] for s in node["state"]] == ["checkout"]

    missing = center.konorctl("groups", "show", "nope", check=False)
    assert missing.returncode == 1 and "no group 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_groups_watch_redraws_on_a_terminal_and_exits_0_on_ctrl_c(fleet: Fleet) -> None:
    _, center, _ = fleet
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONORCTL_")}
    env.update(center.konorctl_env(), NO_COLOR="1")
    argv = [*tool("konorctl"), "groups", "--watch", "--interval", "0.2"]
    with Terminal(argv, env, columns=120) as term:
        term.read_until(r"│ checkout .*│ 1 +│", timeout=20)
        term.proc.send_signal(signal.SIGINT)
        assert term.wait(timeout=20) == 0, term.text
    assert "Traceback" not in term.text and "Aborted" not in term.text
    assert "-- " not in term.text  # no change blocks: the table is redrawn in place


def test_groups_watch_prints_a_block_per_change_and_exits_0_on_ctrl_c(fleet: Fleet) -> None:
    """Piped. Revokes node-a, so it runs last in this module."""
    stack, center, agent = fleet
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KONORCTL_", "KONORKESTRA_"))}
    env.update(center.konorctl_env(), NO_COLOR="1")
    proc = Proc("groups-watch", [*tool("konorctl"), "groups", "--watch", "--interval", "0.2"],
                log=stack.root / "groups-watch.log", env=env, capture=True)  # fmt: skip
    stack.procs.append(proc)
    proc.start()
    first, _ = proc.wait_line(r"│ checkout .*│ 1 +│", timeout=20, what="the first block")

    center.konorctl("nodes", "revoke", agent.node_id)
    second, _ = proc.wait_line(r"│ checkout .*│ 0 +│", timeout=20, start=first + 1,
                               what="a block after node-a was revoked")  # fmt: skip
    # Unchanged polls print nothing: each block differs from the one before. (A poll
    # that lands mid-revocation may show one state in between: it reads /v1/nodes
    # and the convergence in separate requests.)
    blocks: list[list[str]] = []
    for line in proc.lines[: second + 1]:
        if line.text.startswith("-- "):
            blocks.append([])
        elif blocks:
            blocks[-1].append(line.text)
    assert 2 <= len(blocks) <= 3, proc.output()
    assert all(a != b for a, b in pairwise(blocks)), proc.output()

    assert proc.popen is not None
    proc.popen.send_signal(signal.SIGINT)
    wait_until(lambda: proc.returncode is not None, timeout=20, what="the watch to end")
    assert proc.returncode == 0, proc.output()
    assert "Traceback" not in proc.output() and "Aborted" not in proc.output()
