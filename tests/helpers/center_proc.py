"""Run ``konorkestra center`` as a real process on a free loopback port.

Example::

    with CenterProcess(repo=bare, data=tmp / "data") as center:
        center.get("/v1/commits")                      # admin token by default
        konorctl(center, "commits")                    # the real CLI against it

The Center binds ``127.0.0.1:0`` itself and writes the URL it got to
``<data>/center.url``, so there is no port race. Start-up waits for
``/readyz`` with a deadline; a process that dies early fails the test with its log.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tests.helpers.git import git_env
from tests.helpers.poll import wait_for

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else name


class CenterProcess:
    """One Center process; ``start``/``stop`` may be called repeatedly (restarts)."""

    def __init__(
        self,
        *,
        repo: Path | str,
        data: Path,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.repo, self.data, self.args = str(repo), data, args
        self.env = {**git_env(), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = data.parent / f"{data.name}-center.log"
        self.starts = 0

    @property
    def ca_file(self) -> Path:
        """The Center's CA certificate (what konorctl --ca and agents trust)."""
        return self.data / "ca.pem"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """httpx ``verify=`` for this Center: its CA under TLS, else default."""
        if not self.url.startswith("https:"):
            return True
        return ssl.create_default_context(cafile=str(self.ca_file))

    @property
    def admin_token(self) -> str:
        return (self.data / "admin.token").read_text().strip()

    def start(self, timeout: float = 30.0) -> CenterProcess:
        url_file = self.data / "center.url"
        url_file.unlink(missing_ok=True)
        self.starts += 1
        with open(self.log, "ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [
                    tool("konorkestra"),
                    "center",
                    "--repo",
                    self.repo,
                    "--data",
                    str(self.data),
                    "--listen",
                    "127.0.0.1:0",
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )

        def ready() -> bool:
            self._check_alive()
            if not url_file.exists():
                return False
            self.url = url_file.read_text().strip()
            try:
                return (
                    httpx.get(f"{self.url}/readyz", timeout=2, verify=self.verify).status_code
                    == 200
                )
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=timeout, interval=0.05, what="the Center's /readyz")
        return self

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the Center exited with {self.proc.returncode}:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)

    def __enter__(self) -> CenterProcess:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def request(
        self, method: str, path: str, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        kw.setdefault("verify", self.verify)
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kw)

    def get(self, path: str, token: str | None = None, **kw: Any) -> Any:
        resp = self.request("GET", path, token, **kw)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def wait_commit(self, sha: str, timeout: float = 20.0) -> dict[str, Any]:
        """Poll until the Center has ingested ``sha``; return the commit with diagnostics."""

        def seen() -> dict[str, Any] | None:
            self._check_alive()
            resp = self.request("GET", f"/v1/commits/{sha}")
            return resp.json() if resp.status_code == 200 else None

        return wait_for(seen, timeout=timeout, what=f"commit {sha[:12]} to be ingested")


def konorctl(
    center: CenterProcess, *args: str, token: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real ``konorctl`` against ``center`` (config file ignored)."""
    env = {
        **os.environ,
        "KONORCTL_CENTER": center.url,
        "KONORCTL_TOKEN": token or center.admin_token,
        **({"KONORCTL_CA": str(center.ca_file)} if center.url.startswith("https:") else {}),
        "KONORCTL_CONFIG": str(center.data.parent / "no-konorctl.yaml"),
        "COLUMNS": "200",
    }
    proc = subprocess.run(
        [tool("konorctl"), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"konorctl {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


def install_post_receive(bare: Path, center: CenterProcess) -> None:
    """Install hooks/post-receive in ``bare``, configured to notify ``center``."""
    from tests.helpers.git import git

    hook = Path(__file__).resolve().parents[2] / "hooks" / "post-receive"
    target = bare / "hooks" / "post-receive"
    target.write_bytes(hook.read_bytes())
    target.chmod(0o755)
    token_file = bare / "konorkestra-hook.token"
    token_file.write_text(center.admin_token + "\n")
    token_file.chmod(0o600)
    git(bare, "config", "konorkestra.center", center.url)
    git(bare, "config", "konorkestra.tokenFile", str(token_file))
    if center.url.startswith("https:"):
        git(bare, "config", "konorkestra.ca", str(center.ca_file))


def now() -> float:
    return time.perf_counter()
