"""A whole Konorkestra installation on one machine, as real processes.

Example::

    with Stack(tmp) as stack:
        center = stack.center(repo.bare)                     # `konorkestra center`, ready
        grant = center.create_token(["checkout"])            # `konorctl token create -o json`
        agent = stack.agent("node-1")
        agent.join(center, grant)                            # `konorkestra agent join`
        agent.start()                                        # `konorkestra agent run`
        app = stack.app(agent, "checkout")                   # examples/apps/checkout_app.py
        app.proc.wait_line(r"^start ", timeout=10)
    # every process stopped, newest first

Invariants:

* Each component is the real command a user runs, on a free loopback port or
  a Unix socket under the stack's directory; nothing listens beyond loopback.
* The Center chooses its own port (``--listen 127.0.0.1:0``) and reports it in
  ``<data>/center.url``, so there is no port race.
* Every wait has a deadline and watches the process it waits on
  (:mod:`konorkestra.demo.procs`); :meth:`Stack.close` stops everything it
  started, newest first, and only that.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

import konorkestra
from konorkestra.demo.gitrepo import git_env
from konorkestra.demo.procs import DemoError, Proc, tool, wait_until

CHECKOUT = Path(konorkestra.__file__).resolve().parent.parent


def examples_dir() -> Path:
    """``examples/`` of the checkout this package runs from (editable install)."""
    return CHECKOUT / "examples"


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KONORCTL_", "KONORKESTRA_"))}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


@dataclass(frozen=True)
class Grant:
    """A join token as ``konorctl token create -o json`` prints it."""

    token: str
    ca_pin: str
    groups: tuple[str, ...]
    join_command: str


class CenterHandle:
    """A running ``konorkestra center`` and the operator's view of it."""

    def __init__(self, root: Path, repo: Path | str, args: Sequence[str] = ()) -> None:
        self.root, self.data = root, root / "center"
        self.repo = str(repo)
        self.proc = Proc(
            "center",
            [*tool("konorkestra"), "center", "--repo", self.repo, "--data", str(self.data),
             "--listen", "127.0.0.1:0", *args],
            log=root / "center.log",
            env=_child_env(**{k: v for k, v in git_env().items() if k.startswith("GIT_")}),
        )  # fmt: skip
        self.url = ""
        self._http: httpx.Client | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> CenterHandle:
        url_file = self.data / "center.url"
        url_file.unlink(missing_ok=True)
        self.proc.start()
        self.url = wait_until(
            lambda: url_file.read_text().strip() if url_file.exists() else None,
            timeout=timeout,
            what="the Center to write center.url",
            watch=[self.proc],
        )
        wait_until(self._ready, timeout=timeout, what="the Center's /readyz", watch=[self.proc])
        return self

    def _ready(self) -> bool:
        try:
            return self.http.get("/readyz", timeout=2).status_code == 200
        except (httpx.HTTPError, ssl.SSLError, OSError, DemoError):
            return False

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        self.proc.stop()

    # -- access ------------------------------------------------------------------------

    @property
    def admin_token(self) -> str:
        return (self.data / "admin.token").read_text().strip()

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate that verifies the Center's TLS server (``None`` for plain HTTP)."""
        if not self.url.startswith("https://"):
            return None
        for rel in ("ca.pem", "pki/ca/ca.crt"):  # `konorkestra center` writes ca.pem
            if (self.data / rel).is_file():
                return self.data / rel
        raise DemoError(f"the Center serves {self.url} but no CA certificate found in {self.data}")

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            ca = self.ca_file
            verify: ssl.SSLContext | bool = (
                ssl.create_default_context(cafile=str(ca)) if ca else True
            )
            self._http = httpx.Client(base_url=self.url, verify=verify, timeout=30)
        return self._http

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` as admin; the decoded JSON (:class:`DemoError` unless 200)."""
        resp = self.http.get(
            path, params=params, headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        if resp.status_code != 200:
            raise DemoError(f"GET {path}: HTTP {resp.status_code}: {resp.text[:300]}")
        return resp.json()

    def konorctl_env(self) -> dict[str, str]:
        env = {
            "KONORCTL_CENTER": self.url,
            "KONORCTL_TOKEN": self.admin_token,
            "KONORCTL_CONFIG": str(self.root / "konorctl.yaml"),  # absent: no user config
        }
        if self.ca_file is not None:
            env["KONORCTL_CA"] = str(self.ca_file)
        return env

    def konorctl(
        self, *args: str, check: bool = True, columns: int = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``konorctl`` against this Center (tables ``columns`` wide)."""
        env = _child_env(COLUMNS=str(columns), NO_COLOR="1", **self.konorctl_env())
        proc = subprocess.run(
            [*tool("konorctl"), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        if check and proc.returncode != 0:
            raise DemoError(
                f"konorctl {' '.join(args)} exited {proc.returncode}: "
                f"{(proc.stderr or proc.stdout).strip()[:500]}"
            )
        return proc

    # -- operations --------------------------------------------------------------------

    def wait_commit(self, sha: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the Center has ingested ``sha``; the commit with diagnostics and releases."""

        def seen() -> dict[str, Any] | None:
            resp = self.http.get(
                f"/v1/commits/{sha}", headers={"Authorization": f"Bearer {self.admin_token}"}
            )
            return resp.json() if resp.status_code == 200 else None

        return wait_until(
            seen, timeout=timeout, what=f"the Center to ingest commit {sha[:12]}", watch=[self.proc]
        )

    def process(self, node: str, pid: int) -> dict[str, Any] | None:
        """What the Center knows of process ``pid`` on ``node`` (its ack, release), or None."""
        for group in self.get(f"/v1/nodes/{node}").get("state", []):
            for proc in group.get("processes", []):
                if proc.get("pid") == pid:
                    return proc  # type: ignore[no-any-return]
        return None

    def ack(self, node: str, pid: int, release: str) -> dict[str, Any] | None:
        """Process ``pid``'s ack if it is for ``release``, else None (for ``wait_until``)."""
        ack = (self.process(node, pid) or {}).get("ack") or {}
        return ack if ack.get("release") == release else None

    @property
    def dashboard_url(self) -> str:
        """The dashboard's address (``/ui/``, served by the Center itself)."""
        return f"{self.url}/ui/"

    def create_api_token(self, name: str, role: str) -> str:
        """A new API token (``POST /v1/tokens`` as admin): its secret, which is shown once."""
        resp = self.http.post(
            "/v1/tokens", json={"name": name, "role": role},
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )  # fmt: skip
        if resp.status_code != 201:
            raise DemoError(f"POST /v1/tokens: HTTP {resp.status_code}: {resp.text[:300]}")
        return str(resp.json()["token"])

    def create_token(self, groups: Sequence[str], *, ttl: str = "15m") -> Grant:
        out = self.konorctl("token", "create", "--groups", ",".join(groups), "--ttl", ttl,
                            "-o", "json")  # fmt: skip
        reply = json.loads(out.stdout)
        return Grant(reply["token"], reply["ca_pin"], tuple(reply["groups"]), reply["join_command"])


class AgentHandle:
    """One node: ``konorkestra agent join`` once, then ``konorkestra agent run``."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.data = root / name
        self.socket = self.data / "agent.sock"
        self.node_id = ""
        self.proc = Proc(
            f"agent {name}",
            [
                *tool("konorkestra"),
                "agent",
                "run",
                "--data",
                str(self.data),
                "--socket",
                str(self.socket),
            ],
            log=root / f"{name}.log",
            env=_child_env(),
        )

    def join(self, center: CenterHandle, grant: Grant, timeout: float = 30.0) -> str:
        """Enroll; returns what ``agent join`` printed. Sets :attr:`node_id`."""
        self.data.mkdir(mode=0o700, parents=True, exist_ok=True)
        argv = [*tool("konorkestra"), "agent", "join", "--center", center.url, "--ca-pin",
                grant.ca_pin, "--data", str(self.data), "--name", self.name]  # fmt: skip
        env = _child_env(KONORKESTRA_JOIN_TOKEN=grant.token)  # keeps it out of the process list
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DemoError(f"`konorkestra agent join` took longer than {timeout:g}s") from None
        (self.proc.log).write_text(f"$ agent join\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            raise DemoError(f"agent join exited {proc.returncode}: {proc.stderr.strip()[:500]}")
        node = json.loads((self.data / "identity" / "node.json").read_text())
        self.node_id = str(node.get("node_id") or node.get("id"))
        return proc.stdout.strip()

    def start(self) -> AgentHandle:
        self.proc.start()
        return self

    def wait_serving(self, timeout: float = 30.0) -> None:
        """Wait until the agent's socket accepts connections."""
        import socket

        def up() -> bool:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(str(self.socket))
                except OSError:
                    return False
                return True

        wait_until(up, timeout=timeout, what=f"{self.name}'s socket", watch=[self.proc])

    def committed(self, group: str) -> dict[str, Any] | None:
        """The release this node has committed for ``group`` (``current/<group>/release.json``)."""
        try:
            return json.loads((self.data / "current" / group / "release.json").read_bytes())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def wait_committed(self, group: str, sequence: int, timeout: float = 30.0) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            rel = self.committed(group)
            return rel if rel is not None and rel.get("sequence", 0) >= sequence else None

        return wait_until(
            done,
            timeout=timeout,
            what=f"{self.name} to commit {group} sequence {sequence}",
            watch=[self.proc],
        )


class AppHandle:
    """``examples/apps/checkout_app.py`` (or another SDK app) next to an agent."""

    def __init__(self, root: Path, agent: AgentHandle, group: str, *, name: str,
                 script: Path | None = None) -> None:  # fmt: skip
        self.agent, self.group, self.name = agent, group, name
        script = script or examples_dir() / "apps" / "checkout_app.py"
        self.proc = Proc(
            f"app {name} on {agent.name}",
            [sys.executable, str(script), "--socket", str(agent.socket), "--group", group,
             "--name", name],
            log=root / f"{agent.name}.{name}.log",
            env=_child_env(KONORKESTRA_DATA=str(agent.data)),
            capture=True,
        )  # fmt: skip

    def start(self) -> AppHandle:
        self.proc.start()
        return self


class Stack:
    """Owns the processes of one installation; closing it stops them, newest first."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[Proc] = []
        self.centers: list[CenterHandle] = []

    def center(self, repo: Path | str, *args: str, timeout: float = 30.0) -> CenterHandle:
        handle = CenterHandle(self.root, repo, args)
        self.centers.append(handle)
        self.procs.append(handle.proc)
        return handle.start(timeout)

    def agent(self, name: str) -> AgentHandle:
        handle = AgentHandle(self.root, name)
        self.procs.append(handle.proc)
        return handle

    def app(self, agent: AgentHandle, group: str, *, name: str = "checkout-app") -> AppHandle:
        handle = AppHandle(self.root, agent, group, name=name)
        self.procs.append(handle.proc)
        return handle.start()

    def close(self) -> None:
        for center in self.centers:
            if center._http is not None:
                center._http.close()
                center._http = None
        for proc in reversed(self.procs):
            proc.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
