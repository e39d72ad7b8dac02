"""Enrollment end to end with real processes: a TLS Center, konorctl, konorkestra agent join.

The Center is started by a launcher that wires it the way ``konorkestra center``
does (docs/reference/security.md, "Enrollment and transport"), so this test also checks
that recipe.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from konorkestra.agent.identity import CenterRefused, load_identity, renew
from konorkestra.center.store import open_store, schema
from konorkestra.center.store.engine import sqlite_url

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent

LAUNCHER = """
import json, socket, sys
from pathlib import Path
from konorkestra.center.app.factory import create_app
from konorkestra.center.app.context import CenterContext
from konorkestra.center.pki.ca import write_private_file
from konorkestra.center.nodes.enrollment import EnrollmentRoutes, EnrollmentService
from konorkestra.center.nodes.jointokens import JoinTokenHasher
from konorkestra.center.store import open_store
from konorkestra.center.store.engine import sqlite_url
from konorkestra.center.pki.tlscontext import CenterTLS
from konorkestra.center.pki.identity import ClientIdentityMiddleware
from konorkestra.center.operators.apitokens import Role, create_api_token

data, trust_domain = Path(sys.argv[1]), "e2e.konorkestra"
data.mkdir(mode=0o700)
engine = open_store(sqlite_url(str(data / "center.db")))
with engine.begin() as conn:
    admin, _ = create_api_token(conn, role=Role.ADMIN, name="admin", created_by="e2e")
write_private_file(data / "admin.token", admin.encode())
trust_root = b'{"signed": {"version": 1}, "signatures": []}'  # stand-in: served verbatim
tls = CenterTLS.prepare(data / "pki", trust_domain=trust_domain, hosts=["127.0.0.1"])
hasher = JoinTokenHasher.load_or_create(data / "pki" / "enroll-hmac.key")
svc = EnrollmentService(engine, ca=tls.ca, hasher=hasher)
enrollment = EnrollmentRoutes(svc, tls.creds.anchor_pem)
app = create_app(
    CenterContext(engine=engine, trust_root=trust_root, enrollment=enrollment, tls_self_test=True)
)
app.add_middleware(ClientIdentityMiddleware, trust_domain=trust_domain, authorizer=svc)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
server = tls.server(app, host="127.0.0.1", port=0, log_level="warning")
print(json.dumps({"port": sock.getsockname()[1], "pin": tls.pin}), flush=True)
server.run(sockets=[sock])
sys.exit(3 if server.self_test_error else 0)
"""


@dataclass
class Center:
    url: str
    pin: str
    data: Path
    env: dict[str, str]

    def konorctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run([str(BIN / "konorctl"), *args], self.env)

    def agent_join(
        self, token: str, data: Path, pin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        args = ["agent", "join", "--center", self.url, "--token", token]
        args += ["--ca-pin", pin or self.pin, "--data", str(data)]
        return _run([str(BIN / "konorkestra"), *args], self.env)

    def create_token(self, *extra: str) -> dict[str, str]:
        groups = ("--groups", "checkout,payments")
        out = self.konorctl("token", "create", *groups, *extra, "-o", "json")
        assert out.returncode == 0, out.stderr
        reply: dict[str, str] = json.loads(out.stdout)
        return reply


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def center(tmp_path: Path) -> Iterator[Center]:
    launcher = tmp_path / "launch_center.py"
    launcher.write_text(LAUNCHER)
    data = tmp_path / "center"
    # COLUMNS: rich folds table cells to the terminal width; keep ids on one line.
    env = {**os.environ, "KONORCTL_CONFIG": str(tmp_path / "konorctl.yaml"), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, str(launcher), str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"center did not start: {proc.communicate(timeout=10)[1]}"
        info = json.loads(line)
        url = f"https://127.0.0.1:{info['port']}"
        # The launcher listens before it prints, so this request waits in the backlog
        # until the Center accepts: no polling needed.
        verify = ssl.create_default_context(cafile=str(data / "pki" / "ca" / "ca.crt"))
        ca = httpx.get(url + "/v1/enroll/ca", verify=verify, timeout=30)
        assert ca.status_code == 200
        yield Center(url, info["pin"], data, env)
    finally:
        proc.terminate()
        proc.wait(20)


def test_enroll_with_real_processes(center: Center, tmp_path: Path) -> None:
    admin = (center.data / "admin.token").read_text().strip()
    ca_file = str(center.data / "pki/ca/ca.crt")
    login = center.konorctl("login", "--center", center.url, "--ca", ca_file, "--token", admin)
    assert login.returncode == 0, login.stderr
    assert stat.S_IMODE((tmp_path / "konorctl.yaml").stat().st_mode) == 0o600

    text = center.konorctl("token", "create", "--groups", "checkout", "--ttl", "10m")
    assert text.returncode == 0, text.stderr
    assert "konorkestra agent join --center" in text.stdout and center.pin in text.stdout

    created = center.create_token("--labels", "dc=fra1")
    assert created["ca_pin"] == center.pin
    assert created["join_command"].endswith(f"--ca-pin {center.pin}")

    # A wrong pin refuses to talk, and leaves the token usable.
    wrong = center.agent_join(created["token"], tmp_path / "a0", pin="sha256:" + "ab" * 32)
    assert wrong.returncode == 1 and "pin mismatch" in wrong.stderr

    joined = center.agent_join(created["token"], tmp_path / "a1")
    assert joined.returncode == 0, joined.stderr
    assert "joined as node" in joined.stdout
    ident = load_identity(tmp_path / "a1")
    assert ident.paths.trust_root.read_bytes() == b'{"signed": {"version": 1}, "signatures": []}'

    nodes = center.konorctl("nodes", "-o", "json")
    assert nodes.returncode == 0, nodes.stderr
    listed = json.loads(nodes.stdout)
    assert [(n["id"], n["groups"], n["labels"]) for n in listed] == [
        (ident.node_id, ["checkout", "payments"], {"dc": "fra1"})
    ]
    assert ident.node_id in center.konorctl("nodes").stdout
    assert ident.node_id in center.konorctl("nodes", "show", ident.node_id).stdout

    # The same token again fails.
    again = center.agent_join(created["token"], tmp_path / "a2")
    assert again.returncode == 1 and "already used" in again.stderr

    # A token past its TTL fails (time moved forward by editing the row).
    stale = center.create_token()
    engine = open_store(sqlite_url(str(center.data / "center.db")))
    t = schema.join_tokens
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with engine.begin() as conn:
        conn.execute(sa.update(t).where(t.c.id == stale["id"]).values(expires_at=past))
    expired = center.agent_join(stale["token"], tmp_path / "a3")
    assert expired.returncode == 1
    assert expired.stderr == again.stderr  # one message for every refused token
    statuses = json.loads(center.konorctl("token", "list", "-o", "json").stdout)
    assert {t["id"]: t["status"] for t in statuses}[stale["id"]] == "expired"

    # Renewal works over mTLS until the node is revoked; then it is refused at once.
    renewed = renew(ident)
    assert renewed.certificate.serial_number != ident.certificate.serial_number
    revoked = center.konorctl("nodes", "revoke", ident.node_id)
    assert revoked.returncode == 0, revoked.stderr
    with pytest.raises(CenterRefused) as info:
        renew(renewed)
    assert info.value.status == 403
