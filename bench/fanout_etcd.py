"""etcd for ``bench/fanout.py``: a throwaway single-member etcd on loopback, with or without TLS.

Usage::

    with EtcdServer(tmp, tls=True) as etcd:      # own free ports, own data dir, own CA
        etcd.put(b"/bench/fanout", b"7")          # what a publish is on etcd's side
        etcd.proc.pid, etcd.port, etcd.client_files()

Invariants:

* Never the system etcd: the client and peer ports are free ports chosen on
  127.0.0.1 (not 2379/2380), the data directory is under ``root``.
* ``tls=True``: HTTPS with client certificate auth (``--client-cert-auth
  --trusted-ca-file``); the CA, the server and the client certificates are made
  here with ``cryptography`` (ECDSA P-256, like the Center's). The server
  certificate also carries ``clientAuth``: etcd 3.4's HTTP/JSON gateway dials the
  member's own gRPC port with it. ``tls=False``: plain HTTP, no client auth.
* Waits have deadlines and watch the process (:func:`konorkestra.demo.wait_until`).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import shutil
import socket
import ssl
from pathlib import Path
from types import TracebackType

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from konorkestra.demo import Proc, wait_until


def etcd_binary() -> str | None:
    return shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").is_file() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    path.chmod(0o600)


def make_pki(out: Path) -> None:
    """``ca.pem``, ``server.pem``/``server.key`` (127.0.0.1) and ``client.pem``/``client.key``."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fanout bench etcd CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    (out / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, ekus in (
        ("server", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
        ("client", [ExtendedKeyUsageOID.CLIENT_AUTH]),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench-{name}")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ), critical=False)
            .sign(ca_key, hashes.SHA256())
        )  # fmt: skip
        (out / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(out / f"{name}.key", key)


class EtcdServer:
    """One ``etcd`` member, started on enter and stopped on exit."""

    def __init__(self, root: Path, *, tls: bool) -> None:
        binary = etcd_binary()
        if binary is None:
            raise FileNotFoundError("etcd is not installed (Debian: etcd-server)")
        self.root, self.tls = root, tls
        root.mkdir(parents=True, exist_ok=True)
        self.port, peer = free_port(), free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        argv = [
            binary, "--name", "bench", "--data-dir", str(root / "data"),
            "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"bench=http://127.0.0.1:{peer}",
            "--logger", "zap", "--log-level", "warn",
        ]  # fmt: skip
        if tls:
            make_pki(root)
            argv += ["--cert-file", str(root / "server.pem"), "--key-file",
                     str(root / "server.key"), "--client-cert-auth",
                     "--trusted-ca-file", str(root / "ca.pem")]  # fmt: skip
        self.proc = Proc("etcd", argv, log=root / "etcd.log")
        self._http: httpx.Client | None = None

    def client_files(self) -> dict[str, str | None]:
        """The client's TLS material for the worker's spec (all None without TLS)."""
        if not self.tls:
            return {"ca": None, "cert": None, "key": None}
        r = self.root
        return {
            "ca": str(r / "ca.pem"),
            "cert": str(r / "client.pem"),
            "key": str(r / "client.key"),
        }

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            verify: ssl.SSLContext | bool = False
            if self.tls:
                verify = ssl.create_default_context(cafile=str(self.root / "ca.pem"))
                verify.load_cert_chain(str(self.root / "client.pem"), str(self.root / "client.key"))
            self._http = httpx.Client(base_url=self.url, verify=verify, timeout=30)
        return self._http

    def _healthy(self) -> bool:
        try:
            return self.http.get("/health").status_code == 200
        except (httpx.HTTPError, OSError):
            return False

    def put(self, key: bytes, value: bytes) -> None:
        body = {"key": base64.b64encode(key).decode(), "value": base64.b64encode(value).decode()}
        self.http.post("/v3/kv/put", json=body).raise_for_status()

    def __enter__(self) -> EtcdServer:
        self.proc.start()
        wait_until(self._healthy, timeout=60, what="etcd's /health", watch=[self.proc])
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._http is not None:
            self._http.close()
        self.proc.stop()
