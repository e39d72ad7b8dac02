"""The Python SDK end to end: git push → Center → Agent (mTLS) → an app's ``on_change``.

Everything is a real process (``konorkestra center``, ``konorkestra agent join|run``,
an app using ``konorkestra.sdk``), started through :mod:`konorkestra.demo`.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from konorkestra.demo import AgentHandle, CenterHandle, ConfigRepo, Proc, Stack, edits, examples_dir
from konorkestra.demo.gitrepo import git
from konorkestra.demo.procs import wait_until

pytestmark = pytest.mark.slow

APP = """
import signal, sys, threading
import konorkestra.sdk as sdk

client = sdk.connect(sys.argv[1], name="e2e-app")
cfg = client.get_config("checkout")
state = {"cfg": cfg, "calls": 0}
print(f"start {cfg.release} {cfg['checkout-api']['timeout_ms']}", flush=True)

@client.on_change("checkout")
def changed(new, old):
    state["calls"] += 1
    print(f"change {state['calls']} {new.release} old={old.release} "
          f"timeout_ms={new['checkout-api']['timeout_ms']}", flush=True)
    if new["checkout-flags"].get("failBadReload"):
        raise RuntimeError("refusing checkout-flags: failBadReload is set")
    state["cfg"] = new

def show(*_):
    cur = state["cfg"]
    print(f"current {cur.release} timeout_ms={cur['checkout-api']['timeout_ms']} "
          f"newest={client.get_config('checkout').release} calls={state['calls']}", flush=True)

stop = threading.Event()
signal.signal(signal.SIGUSR1, show)
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
client.close()
"""


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[tuple[Stack, ConfigRepo, CenterHandle, AgentHandle]]:
    repo = ConfigRepo.create(tmp_path, seed=examples_dir() / "config-repo")
    # About the SDK, not rollouts: all at once, so the canary's failed_acks guard does not
    # roll the failBadReload Release back before the Center's view of the failed ack is read.
    repo.write(edits.GROUP_FILE, edits.all_at_once((repo.work / edits.GROUP_FILE).read_text()))
    git(repo.work, "commit", "--quiet", "--all", "--amend", "--no-edit")  # one Release to start
    repo.push()
    with Stack(tmp_path) as stack:
        center = stack.center(repo.bare)
        center.wait_commit(repo.head())
        agent = stack.agent("node-e2e")
        agent.join(center, center.create_token(["checkout"]))
        agent.start()
        agent.wait_committed("checkout", 1)
        yield stack, repo, center, agent


def test_on_change_fires_once_and_a_failing_reload_is_reported(
    installed: tuple[Stack, ConfigRepo, CenterHandle, AgentHandle], tmp_path: Path
) -> None:
    stack, repo, center, agent = installed
    script = tmp_path / "app.py"
    script.write_text(APP)
    argv = [sys.executable, str(script), str(agent.socket)]
    app = Proc("app", argv, log=tmp_path / "app.log", capture=True).start()
    stack.procs.append(app)
    _, start = app.wait_line(r"^start ", timeout=20)
    first = start.text.split()[1]
    assert start.text.endswith(" 400")

    # A push that changes a value: on_change fires once, with the new value.
    repo.write(edits.API_FILE, edits.checkout_api(3, timeout_ms=650), append=True)
    repo.commit("checkout-api v3: timeout 650 ms")
    repo.push()
    _, change = app.wait_line(r"^change ", timeout=30)
    assert change.text.startswith("change 1 checkout-2-")
    assert f"old={first}" in change.text and change.text.endswith("timeout_ms=650")
    second = change.text.split()[2]
    ack = wait_until(
        lambda: center.ack(agent.node_id, app.pid, second), timeout=20, what="applied ack"
    )
    assert ack["status"] == "applied" and not ack.get("error")
    assert [ln.text for ln in app.lines if ln.text.startswith("change ")] == [change.text]

    # A push whose config makes the callback raise: the app keeps the old value...
    repo.write(edits.FLAGS_FILE, edits.checkout_flags(4, fail_reload=True), append=True)
    repo.write(edits.GROUP_FILE, edits.checkout_group(4, policy="all-at-once"))
    repo.commit("checkout-flags v4: failBadReload")
    repo.push()
    _, failing = app.wait_line(r"^change 2 ", timeout=30)
    third = failing.text.split()[2]
    assert third.startswith("checkout-3-") and f"old={second}" in failing.text
    seen = len(app.lines)
    app.popen.send_signal(signal.SIGUSR1)  # type: ignore[union-attr]
    _, current = app.wait_line(r"^current ", timeout=10, start=seen)
    assert current.text == f"current {second} timeout_ms=650 newest={third} calls=2"

    # ... and the Center shows this process's ack as failed, with the message.
    message = "RuntimeError: refusing checkout-flags: failBadReload is set"
    ack = wait_until(
        lambda: center.ack(agent.node_id, app.pid, third), timeout=20, what="failed ack"
    )
    assert ack["status"] == "failed" and ack["error"] == message
    proc = center.process(agent.node_id, app.pid)
    assert proc is not None and proc["release"] == third and proc["client"] == "e2e-app"
    shown = center.konorctl("nodes", "show", agent.node_id).stdout
    line = next(ln for ln in shown.splitlines() if f"pid {app.pid} " in ln)
    assert "[e2e-app]" in line and f"saw {third}, ack failed: {message}" in line
    assert app.alive
