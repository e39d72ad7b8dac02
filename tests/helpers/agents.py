"""Real processes for agent end-to-end tests: a TLS Center, agents, SDK watchers.

Example::

    center = TlsCenter(tmp / "center", repo=bare, freshness_ttl=6).start()
    token = center.join_token("checkout")
    agent = AgentProcess(tmp / "a1", center).join(token).start()   # or CenterAt(url, pin)
    agent.get("checkout")["release"]
    watcher = Watcher(agent, "checkout").start()      # the Python SDK in its own process

:class:`TlsCenter` is the real ``konorkestra center`` process with a given
``--freshness-ttl`` and ``--node-cert-lifetime``, and a restart that reuses the
port, so agents find their Center again at the URL they joined. Tests that need
neither use ``tests.helpers.center_proc`` with :class:`CenterAt`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from tests.helpers.git import git_env
from tests.helpers.poll import wait_for

BIN = Path(sys.executable).parent
TRUST_DOMAIN = "e2e.konorkestra"

WATCHER = """
import json, sys, time
import konorkestra.sdk as sdk
socket_path, group = sys.argv[1], sys.argv[2]
client = sdk.connect(socket_path, name="e2e-watcher")
def emit(cfg, kind):
    print(json.dumps({"event": kind, "release": cfg.release, "sequence": cfg.sequence,
                      "config": cfg.to_dict(), "t": time.time()}), flush=True)
emit(client.get_config(group), "initial")
@client.on_change(group)
def changed(new, old):
    emit(new, "change")
sys.stdin.read()
client.close()
"""


def tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else name


class TlsCenter:
    """A Center process with TLS, enrollment and the agent API."""

    def __init__(self, data: Path, *, repo: Path, freshness_ttl: float = 300.0,
                 cert_lifetime: float = 86400.0) -> None:  # fmt: skip
        self.data, self.repo = data, repo
        self.freshness_ttl, self.cert_lifetime = freshness_ttl, cert_lifetime
        self.port = 0
        self.pin = ""
        self.proc: subprocess.Popen[str] | None = None
        self.log = data.parent / f"{data.name}.log"
        self.env = {**git_env(), "KONORCTL_CONFIG": str(data.parent / "no-konorctl.yaml")}

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.data / "pki" / "ca" / "ca.crt"

    @property
    def admin_token(self) -> str:
        return (self.data / "admin.token").read_text().strip()

    def start(self) -> TlsCenter:
        (self.data / "center.url").unlink(missing_ok=True)  # written again once it listens
        args = [tool("konorkestra"), "center", "--repo", str(self.repo), "--data", str(self.data),
                "--listen", f"127.0.0.1:{self.port}", "--trust-domain", TRUST_DOMAIN,
                "--poll", "30", "--freshness-ttl", f"{round(self.freshness_ttl)}s",
                "--node-cert-lifetime", f"{round(self.cert_lifetime)}s",
                "--log-level", "warning"]  # fmt: skip
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True,
                                         env=self.env)  # fmt: skip

        def listening() -> tuple[int, str] | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the Center exited:\n{self.log.read_text()}")
            url = self.data / "center.url"
            pins = re.findall(r"CA pin: (sha256:[0-9a-f]+)", self.log.read_text())
            if not url.exists() or not pins or not url.read_text().endswith("\n"):
                return None
            return int(url.read_text().strip().rsplit(":", 1)[1]), pins[-1]

        self.port, self.pin = wait_for(listening, timeout=30, interval=0.05,
                                       what="the Center to listen")  # fmt: skip
        wait_for(self._ready, timeout=30, interval=0.05, what="the Center's /readyz")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the Center exited:\n{self.log.read_text()}")
        try:
            return self.request("GET", "/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        verify = ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.request(method, self.url + path, headers=headers, verify=verify,
                             timeout=30, **kw)  # fmt: skip

    def get(self, path: str, **kw: Any) -> Any:
        resp = self.request("GET", path, **kw)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def konorctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KONORCTL_CENTER": self.url, "KONORCTL_TOKEN": self.admin_token,
               "KONORCTL_CA": str(self.ca_file), "COLUMNS": "200",
               "KONORCTL_CONFIG": str(self.data.parent / "no-konorctl.yaml")}  # fmt: skip
        out = subprocess.run([tool("konorctl"), *args], capture_output=True, text=True, env=env,
                             timeout=60, check=False)  # fmt: skip
        assert out.returncode == 0, f"konorctl {' '.join(args)}: {out.stderr}"
        return out

    def join_token(self, groups: str) -> str:
        out = self.konorctl("token", "create", "--groups", groups, "-o", "json")
        token: str = json.loads(out.stdout)["token"]
        return token

    def latest(self, group: str) -> dict[str, Any] | None:
        releases = self.get("/v1/releases", params={"group": group, "limit": 1000})["releases"]
        return max(releases, key=lambda r: r["sequence"]) if releases else None


class Joinable(Protocol):
    """What an agent needs to join a Center: its URL and CA pin."""

    @property
    def url(self) -> str: ...
    @property
    def pin(self) -> str: ...


@dataclass(frozen=True)
class CenterAt:
    """A Center known by URL and pin (e.g. a ``konorkestra center`` process)."""

    url: str
    pin: str


class AgentProcess:
    """``konorkestra agent run`` on its own data directory and socket."""

    def __init__(self, data: Path, center: Joinable, *, config: str = "") -> None:
        self.data, self.center = data, center
        self.data.mkdir(mode=0o700)
        self.socket = data / "agent.sock"
        (data / "agent.toml").write_text(
            "report_interval = 0.5\nbackoff_max = 1.0\nclock_skew = 0.0\n" + config
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"{data.name}.log"
        self.node_id = ""

    def join(self, token: str) -> AgentProcess:
        args = [tool("konorkestra"), "agent", "join", "--center", self.center.url, "--token", token,
                "--ca-pin", self.center.pin, "--data", str(self.data)]  # fmt: skip
        out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        self.node_id = json.loads((self.data / "identity" / "node.json").read_text())["node_id"]
        return self

    def start(self) -> AgentProcess:
        args = [tool("konorkestra"), "agent", "run", "--data", str(self.data),
                "--socket", str(self.socket), "--log-level", "debug"]  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._listening, timeout=30, interval=0.05, what=f"agent {self.data.name}")
        return self

    def _listening(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.log.read_text()}")
        return self.socket.exists()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def request(self, req: dict[str, Any]) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(self.socket))
            s.sendall(json.dumps({"id": 1, **req}).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        reply: dict[str, Any] = json.loads(buf)
        return reply

    def get(self, group: str) -> dict[str, Any]:
        return self.request({"op": "get", "group": group})

    def serves(self, release_id: str, group: str) -> bool:
        try:
            return self.get(group).get("release") == release_id
        except OSError:
            return False

    def status(self) -> dict[str, Any]:
        args = [tool("konorkestra"), "agent", "status", "--data", str(self.data), "-o", "json"]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
        info: dict[str, Any] = json.loads(out.stdout)
        return info


class Watcher:
    """An application process using the Python SDK: prints each release it sees."""

    def __init__(self, agent: AgentProcess, group: str) -> None:
        self.agent, self.group = agent, group
        self.events: list[dict[str, Any]] = []
        self.proc: subprocess.Popen[str] | None = None
        self.script = agent.data.parent / "watcher.py"
        self.script.write_text(WATCHER)

    def start(self) -> Watcher:
        env = {**os.environ, "KONORKESTRA_DATA": str(self.agent.data)}
        self.proc = subprocess.Popen(
            [sys.executable, str(self.script), str(self.agent.socket), self.group],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env=env,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()
        wait_for(lambda: self.events, timeout=20, what="the watcher's first config")
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def saw(self, release_id: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["release"] == release_id), None)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def now() -> float:
    return time.time()
