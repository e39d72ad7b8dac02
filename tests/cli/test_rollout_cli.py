"""``konorctl rollouts`` / ``konorctl rollout …`` against a real Center and two real agents.

The repo's ``canary`` Policy is made fast: 50 % baking 1 s, then (after a manual
approval) every node baking an hour, then 100 %. Pushing a new checkout-api
version starts Release 2's rollout; the operator drives it with the real
``konorctl``: status while it awaits approval, approve, a refused approve (409),
pause and resume, promote refused without ``--yes``, abort → rolled back with a
rollback Release, and ``--watch`` ending with the rollout (exit 1 rolled back,
exit 0 completed). Rollout semantics themselves are the e2e suite's concern.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from konorkestra.cli.konorctl import cli
from konorkestra.demo import CenterHandle, ConfigRepo, Proc, Stack, edits, examples_dir
from konorkestra.demo.procs import tool, wait_until

FAST_CANARY = edits.canary_policy(((50, "1s"), (60, "1h"), (100, None)), approval="manual")

Fleet = tuple[Stack, ConfigRepo, CenterHandle]


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A Center whose checkout Group has Release 1 committed on two agents."""
    repo = ConfigRepo.create(tmp_path)  # one commit, so one Release per Group
    shutil.copytree(examples_dir() / "config-repo", repo.work, dirs_exist_ok=True)
    repo.write("policies/canary.yaml", FAST_CANARY)
    repo.commit("examples with a fast manual canary")
    repo.push()
    with Stack(tmp_path) as stack:
        center = stack.center(repo.bare)
        center.wait_commit(repo.head())
        agents = [stack.agent(name) for name in ("node-a", "node-b")]
        for agent in agents:
            agent.join(center, center.create_token(["checkout"]))
            agent.start()
        for agent in agents:
            agent.wait_committed("checkout", 1)
        yield stack, repo, center


def konorctl(center: CenterHandle, *args: str) -> subprocess.CompletedProcess[str]:
    return center.konorctl(*args, check=False, columns=100)


def release_2_rollout(repo: ConfigRepo, center: CenterHandle) -> dict[str, Any]:
    """Push checkout-api v3 (Release 2); its rollout once the canary baked."""
    repo.write(edits.API_FILE, edits.checkout_api(3, timeout_ms=650), append=True)
    repo.commit("checkout-api v3")
    repo.push()
    return rollout_in(center, "awaiting_approval", sequence=2)


def rollout_in(center: CenterHandle, phase: str, *, sequence: int = 2) -> dict[str, Any]:
    def there() -> dict[str, Any] | None:
        status: dict[str, Any] = center.get("/v1/rollouts/checkout")
        reached = (status["phase"], status["release"]["sequence"]) == (phase, sequence)
        return status if reached else None

    what = f"checkout's rollout of Release {sequence} to be {phase}"
    return wait_until(there, timeout=30, what=what, watch=[center.proc])


def watch(stack: Stack, center: CenterHandle) -> Proc:
    """``konorctl rollout status checkout --watch`` in the background, output piped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KONORCTL_", "KONORKESTRA_"))}
    env.update(center.konorctl_env(), NO_COLOR="1", COLUMNS="100")
    proc = Proc("watch", [*tool("konorctl"), "rollout", "status", "checkout", "--watch",
                          "--interval", "0.2"], log=stack.root / "watch.log", env=env,
                capture=True)  # fmt: skip
    stack.procs.append(proc)
    return proc.start()


def exited(proc: Proc) -> int:
    wait_until(lambda: proc.returncode is not None, timeout=30, what=f"{proc.name} to exit")
    code = proc.returncode
    assert code is not None
    return code


@pytest.mark.slow
def test_an_operator_approves_pauses_resumes_and_aborts_a_manual_canary(fleet: Fleet) -> None:
    stack, repo, center = fleet
    release_2_rollout(repo, center)

    shown = konorctl(center, "rollout", "status", "checkout")
    assert shown.returncode == 0, shown.stderr
    for text in ("checkout-2-", "awaiting approval for step 2/3", "targeted", "waves",
                 "failed_acks", "≥ 1", "earlier rollouts", "checkout-1-"):  # fmt: skip
        assert text in shown.stdout, (text, shown.stdout)
    api = json.loads(konorctl(center, "rollout", "status", "checkout", "-o", "json").stdout)
    assert api["phase"] == "awaiting_approval" and api["nodes"]["targeted"] == 1
    assert [h["phase"] for h in api["history"]] == ["completed"]

    approved = konorctl(center, "rollout", "approve", "checkout", "--reason", "canary clean")
    assert approved.returncode == 0, approved.stderr
    assert "approved the rollout of checkout: checkout-2-" in approved.stdout
    assert "step 2/3" in approved.stdout
    rollout_in(center, "baking")

    refused = konorctl(center, "rollout", "approve", "checkout")
    assert refused.returncode == 1
    assert "nothing awaits approval" in refused.stderr and "rollout_conflict" in refused.stderr
    assert (
        "checkout is now baking, step 2/3" in refused.stderr and "Traceback" not in refused.stderr
    )

    paused = konorctl(center, "rollout", "pause", "checkout", "--reason", "lunch")
    assert paused.returncode == 0, paused.stderr
    assert ": paused, step 2/3" in paused.stdout and "left when paused" in paused.stdout
    shown = konorctl(center, "rollout", "status", "checkout").stdout
    assert "paused (from baking)" in shown and "lunch" in shown and "canary clean" in shown
    resumed = konorctl(center, "rollout", "resume", "checkout")
    assert resumed.returncode == 0 and ": baking, step 2/3" in resumed.stdout, resumed.stderr

    no_yes = konorctl(center, "rollout", "promote", "checkout")
    assert no_yes.returncode == 2 and "add --yes" in no_yes.stderr
    assert center.get("/v1/rollouts/checkout")["phase"] == "baking"
    actions = [e["action"] for e in center.get("/v1/audit", limit=1000)["events"]]
    assert "rollout.promoted" not in actions and "approval.granted" in actions

    watching = watch(stack, center)
    watching.wait_line(r"checkout: checkout-2-\S+ \(seq 2\): baking", timeout=20)
    aborted = konorctl(center, "rollout", "abort", "checkout", "--reason", "p99 up")
    assert aborted.returncode == 0, aborted.stderr
    assert ": rolled_back" in aborted.stdout
    assert "rollback release checkout-3-" in aborted.stdout
    assert exited(watching) == 1
    assert "rolled back" in watching.output() and "p99 up" in watching.output()

    final = konorctl(center, "rollout", "status", "checkout").stdout
    assert "rollback" in final and "checkout-3-" in final and "p99 up" in final


@pytest.mark.slow
def test_rollouts_lists_each_group_and_watch_ends_0_when_promote_completes(fleet: Fleet) -> None:
    stack, repo, center = fleet
    release_2_rollout(repo, center)

    table = konorctl(center, "rollouts")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert all(len(line) <= 100 for line in lines), table.stdout
    [checkout] = [line for line in lines if line.startswith("checkout ")]
    assert "checkout-2-" in checkout and "awaiting" in checkout and " 1/3 " in checkout
    assert " 1/2 " in checkout  # nodes targeted / enrolled
    listed = json.loads(konorctl(center, "rollouts", "-o", "json").stdout)
    assert {r["group"]: r["phase"] for r in listed} == {
        "checkout": "awaiting_approval", "payments": "completed"}  # fmt: skip

    watching = watch(stack, center)
    watching.wait_line(r"checkout: checkout-2-\S+ \(seq 2\): awaiting_approval", timeout=20)
    promoted = konorctl(center, "rollout", "promote", "checkout", "--yes", "--reason", "hotfix")
    assert promoted.returncode == 0, promoted.stderr
    assert ": completed, step 3/3, 2/2 nodes targeted" in promoted.stdout
    assert exited(watching) == 0
    assert "completed" in watching.output()


def test_each_command_explains_itself_and_promote_needs_yes() -> None:
    """--help in operator terms; promote without --yes refuses before any request."""
    runner = CliRunner()

    def help_of(*args: str) -> str:
        result = runner.invoke(cli, [*args, "--help"], terminal_width=100)
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    assert "bake time left" in help_of("rollouts")
    status = help_of("rollout", "status")
    assert "0 the rollout completed" in status and "1 it was rolled back or aborted" in status
    assert "roll it back" in help_of("rollout", "abort")
    assert "--yes" in help_of("rollout", "promote")
    for command in ("approve", "pause", "resume"):
        assert "--reason" in help_of("rollout", command)
    # No Center listens on port 9: a request would fail with exit 1, not 2.
    refused = runner.invoke(
        cli, ["rollout", "promote", "checkout", "--center", "http://127.0.0.1:9"]
    )
    assert refused.exit_code == 2 and "add --yes" in refused.output
