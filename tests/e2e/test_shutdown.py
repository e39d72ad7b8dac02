"""Stopping is routine: SIGTERM to a Center or an agent with parked clients is quiet and quick.

Real processes and sockets: a TLS Center with three agents parked on
``/v1/agent/desired``, and an agent with a Python SDK watcher parked on ``watch``.
Each stop is measured from the signal to the process's exit against a deadline.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.agents import AgentProcess, TlsCenter
from tests.helpers.configrepo import payments_common, seeded
from tests.helpers.git import WorkRepo
from tests.helpers.poll import wait_for

pytestmark = pytest.mark.slow
STOP_WITHIN = 2.0
"""Seconds from SIGTERM to the process's exit."""

GROUP = """\
apiVersion: konorkestra.io/v1
kind: Group
metadata: {{name: payments}}
spec:
  configSets: [payments-common@{version}]
  policy: all-at-once
"""

WATCHER = """
import json, logging, sys
import konorkestra.sdk as sdk
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
client = sdk.connect(sys.argv[1], name="shutdown-watcher")
def emit(cfg):
    print(json.dumps({"release": cfg.release}), flush=True)
emit(client.get_config("payments"))
client.on_change("payments")(lambda new, old: emit(new))
sys.stdin.read()
client.close()
"""


def publish(center: TlsCenter, work: WorkRepo, version: int) -> dict[str, Any]:
    """Push payments-common ``version`` and wait for the Center's new Release."""
    before = center.latest("payments")
    work.write("configsets/payments-common.yaml", payments_common(version, f"C{version:02d}"))
    work.write("groups/payments.yaml", GROUP.format(version=version))
    work.commit(f"payments-common v{version}")
    work.push()
    floor = before["sequence"] if before else 0
    release: dict[str, Any] = wait_for(
        lambda: (r := center.latest("payments")) and r["sequence"] > floor and r,
        timeout=30, what=f"the release of payments-common v{version}",
    )  # fmt: skip
    return release


def parked(center: TlsCenter) -> float:
    text = center.request("GET", "/metrics").text
    found = re.search(r"^konorkestra_center_parked_requests (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else -1.0


def stop_timed(proc: subprocess.Popen[Any] | None) -> float:
    """SIGTERM ``proc``; seconds until it exited (the wait is a deadline, not a sleep)."""
    assert proc is not None and proc.poll() is None
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError("still running 20 s after SIGTERM") from None
    return time.monotonic() - started


def since(path: Path, offset: int) -> str:
    return path.read_bytes()[offset:].decode(errors="replace")


def assert_quiet(text: str, who: str) -> None:
    """No traceback, no cancelled request, no 500 (DEBUG lines trace httpcore: skipped)."""
    text = "\n".join(x for x in text.splitlines() if " DEBUG " not in x)
    for bad in ("Traceback", "CancelledError", "Exception in ASGI", "graceful shutdown exceeded",
                "Internal Server Error"):  # fmt: skip
        assert bad not in text, f"{who} logged {bad!r}:\n{text[-3000:]}"
    # "500" as a status, not inside a timestamp (",500") or a port number.
    assert not re.search(r"(?<![\d,.:])500(?!\d)", text), f"{who} logged a 500:\n{text[-3000:]}"


@pytest.mark.parametrize("sync", ["long-poll", "stream"])
def test_center_stop_answers_parked_long_polls_and_agents_reconnect(
    tmp_path: Path, sync: str
) -> None:
    bare, work = seeded(tmp_path)
    center = TlsCenter(tmp_path / "center", repo=bare).start()
    agents: list[AgentProcess] = []
    try:
        first = wait_for(lambda: center.latest("payments"), timeout=30, what="a release")
        for name in ("node1", "node2", "node3"):
            agent = AgentProcess(tmp_path / name, center, config=f'sync = "{sync}"\n')
            agents.append(agent.join(center.join_token("payments")).start())
        for agent in agents:
            wait_for(lambda a=agent: a.serves(first["id"], "payments"), timeout=30,
                     what=f"{agent.data.name} to serve {first['id']}")  # fmt: skip
        wait_for(lambda: parked(center) == len(agents), timeout=30, what="three parked agents")

        center_mark = center.log.stat().st_size
        marks = [a.log.stat().st_size for a in agents]
        took = stop_timed(center.proc)
        print(f"\nCenter with {len(agents)} parked long-polls stopped in {took:.2f}s")
        assert took < STOP_WITHIN
        assert_quiet(since(center.log, center_mark), "the Center")
        for agent, mark in zip(agents, marks, strict=True):
            # Its parked poll got a normal answer ("nothing new") or its stream a normal
            # end, then one line: the Center is gone.
            wait_for(lambda a=agent, m=mark: "cannot reach the Center" in since(a.log, m),
                     timeout=15, what=f"{agent.data.name} to notice")  # fmt: skip
            text = since(agent.log, mark)
            answered = (
                "the Center answered: 0 release(s)"
                if sync == "long-poll"
                else ("the Center ended the stream")
            )
            assert answered in text, text[-3000:]
            warnings = [x for x in text.splitlines() if " WARNING " in x or " ERROR " in x]
            assert len(warnings) == 1 and "cannot reach the Center" in warnings[0], warnings
            assert_quiet(text, agent.data.name)

        center.start()
        second = publish(center, work, 2)
        for agent in agents:
            wait_for(lambda a=agent: a.serves(second["id"], "payments"), timeout=30,
                     what=f"{agent.data.name} to be served again")  # fmt: skip
            text = since(agent.log, 0)
            assert "reconnected to the Center" in text
            assert_quiet(text, agent.data.name)
    finally:
        for agent in agents:
            agent.stop()
        center.stop()


def test_agent_stop_with_a_parked_watcher_is_quick_and_the_sdk_reconnects(
    tmp_path: Path,
) -> None:
    bare, work = seeded(tmp_path)
    center = TlsCenter(tmp_path / "center", repo=bare).start()
    agent = AgentProcess(tmp_path / "node1", center)
    script = tmp_path / "watcher.py"
    script.write_text(WATCHER)
    watcher_log = tmp_path / "watcher.log"
    watcher: subprocess.Popen[str] | None = None
    seen: list[str] = []
    try:
        first = wait_for(lambda: center.latest("payments"), timeout=30, what="a release")
        agent.join(center.join_token("payments")).start()
        wait_for(lambda: agent.serves(first["id"], "payments"), timeout=30, what="first release")
        with open(watcher_log, "w") as err:
            watcher = subprocess.Popen([sys.executable, str(script), str(agent.socket)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=err, text=True)  # fmt: skip
        assert watcher.stdout is not None
        out = watcher.stdout
        threading.Thread(target=lambda: seen.extend(json.loads(x)["release"] for x in out),
                         daemon=True).start()  # fmt: skip

        def saw(release_id: str) -> bool:
            return bool(wait_for(lambda: release_id in seen, timeout=30, what=release_id))

        assert saw(first["id"])
        second = publish(center, work, 2)
        assert saw(second["id"])  # the watcher is parked on its watch

        mark = agent.log.stat().st_size
        took = stop_timed(agent.proc)
        print(f"\nagent with a parked SDK watcher stopped in {took:.2f}s")
        assert took < STOP_WITHIN
        assert_quiet(since(agent.log, mark), "the agent")
        wait_for(lambda: "lost the agent" in watcher_log.read_text(), timeout=10,
                 what="the SDK to notice")  # fmt: skip
        assert watcher.poll() is None

        agent.start()
        third = publish(center, work, 3)
        assert saw(third["id"])  # the SDK reconnected and resumed its watch
        assert watcher.stdin is not None
        watcher.stdin.close()
        watcher.wait(10)
        text = watcher_log.read_text()
        assert "Traceback" not in text, text
        assert text.count("lost the agent") == 1, text
    finally:
        if watcher is not None and watcher.poll() is None:
            watcher.kill()
            watcher.wait(10)
        agent.stop()
        center.stop()
