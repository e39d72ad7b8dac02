"""The real ``konorkestra center`` and ``agent run`` tell systemd READY=1 when serving.

Each process starts with ``$NOTIFY_SOCKET`` naming a datagram socket the test
binds, as systemd does for a ``Type=notify`` unit. The test waits for the
datagram (a receive deadline, no sleep), then checks the process really serves
at that moment: the Center answers ``/healthz`` over TLS with no retry and its
``/readyz`` finds the store open (the first Git ingest may still run), the agent
answers ``get`` on its socket. SIGTERM then brings ``STOPPING=1``.
"""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.agents import AgentProcess, TlsCenter, tool
from tests.helpers.configrepo import seeded

pytestmark = pytest.mark.slow
DEADLINE = 60.0


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.settimeout(DEADLINE)
        yield sock


def receive(sock: socket.socket, proc: subprocess.Popen[bytes], log: Path) -> dict[str, str]:
    """The next notification as a dict; fails with the process's log on timeout."""
    try:
        data = sock.recv(4096).decode()
    except TimeoutError:
        proc.kill()
        raise AssertionError(f"no notification in {DEADLINE}s:\n{log.read_text()}") from None
    return dict(line.split("=", 1) for line in data.split("\n"))


def spawn_ready(
    args: list[str], env: dict[str, str], notify: socket.socket, log: Path
) -> subprocess.Popen[bytes]:
    """Start ``args`` with ``$NOTIFY_SOCKET`` set; return once it said READY=1 (its own pid)."""
    env = {**env, "NOTIFY_SOCKET": notify.getsockname()}
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    ready = receive(notify, proc, log)
    assert ready["READY"] == "1" and ready["MAINPID"] == str(proc.pid), ready
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_center_notifies_ready_when_serving(tmp_path: Path, notify: socket.socket) -> None:
    bare, _work = seeded(tmp_path)
    center = TlsCenter(tmp_path / "center", repo=bare)
    log = tmp_path / "center.log"
    args = [tool("konorkestra"), "center", "--repo", str(bare), "--data", str(center.data),
            "--listen", "127.0.0.1:0", "--log-level", "warning"]  # fmt: skip
    proc = spawn_ready(args, center.env, notify, log)
    try:
        url = (center.data / "center.url").read_text().strip()
        verify = ssl.create_default_context(cafile=str(center.data / "ca.pem"))
        assert httpx.get(url + "/healthz", verify=verify, timeout=10).status_code == 200
        # READY does not wait for the first Git ingest (a Git host that is down must not
        # make systemd kill a Center that can serve agents their last Releases).
        checks = httpx.get(url + "/readyz", verify=verify, timeout=10).json()["checks"]
        assert checks["store"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert receive(notify, proc, log)["STOPPING"] == "1"
        # uvicorn re-raises the SIGTERM it handled; systemd counts that as a clean stop.
        assert proc.wait(15) in (0, -signal.SIGTERM)
    finally:
        stop(proc)


def test_agent_notifies_ready_when_its_socket_serves(tmp_path: Path, notify: socket.socket) -> None:
    bare, _work = seeded(tmp_path)
    center = TlsCenter(tmp_path / "center", repo=bare).start()
    try:
        agent = AgentProcess(tmp_path / "agent", center).join(center.join_token("payments"))
        log = tmp_path / "agent-run.log"
        args = [tool("konorkestra"), "agent", "run", "--data", str(agent.data),
                "--socket", str(agent.socket)]  # fmt: skip
        proc = spawn_ready(args, center.env, notify, log)
        try:
            reply = agent.get("payments")  # the socket answers at once, no retry
            assert reply["id"] == 1 and isinstance(reply["ok"], bool), reply
            proc.send_signal(signal.SIGTERM)
            assert receive(notify, proc, log)["STOPPING"] == "1"
            assert proc.wait(15) == 0
        finally:
            stop(proc)
    finally:
        center.stop()
