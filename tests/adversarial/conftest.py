"""Fixtures for the abuse suite: one real Center for the whole session, and a node.

``center`` (session scope) is a real ``konorkestra center`` process
(:class:`tests.helpers.center_proc.CenterProcess`: TLS on, its own data
directory, an admin token in ``center.admin_token``) over a bare repository
seeded with ``examples/config-repo`` (groups ``checkout``, ``payments``,
``payments-eu``); its first Releases exist before any test runs. Tests that
attack it share it, so a test must not leave it unusable for the next one
(don't revoke the ``node`` below, don't stop the process). A test that needs a
Center of its own (restarts, kill -9) starts one; see ``tests/e2e/conftest.py``.

``node`` (session scope) is a node enrolled into ``center`` through the public
API (join token for ``checkout``, then ``POST /v1/enroll`` with a fresh P-256
CSR): ``node.client()`` is an ``httpx.Client`` presenting its certificate, for
the routes that need mTLS (``/v1/agent/*``, ``/v1/nodes/self/renew``).

At session end the Center is stopped (SIGTERM) and its whole log -- start-up,
every test's requests, shutdown -- must hold no ``Traceback``: bad input must
never reach an unhandled exception. The session fails with the excerpt.

``source()`` hands out a fresh loopback source address (``127.0.x.y``) per call;
requests from distinct sources do not share a bucket of the enrollment rate
limiter (10 attempts, then one per 6 s per source), so ``/v1/enroll`` can be
attacked many times without tests turning into 429s.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers.center_proc import CenterProcess
from tests.helpers.configrepo import seeded
from tests.helpers.poll import wait_for

_SOURCES = (f"127.0.{i // 250}.{i % 250 + 2}" for i in itertools.count())


def source() -> str:
    """A loopback address no earlier request in this session came from."""
    return next(_SOURCES)


def csr_pem() -> tuple[str, bytes]:
    """A fresh P-256 key (PEM) and a CSR for it (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    pem = csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, key_pem


@dataclass(frozen=True)
class Node:
    """An enrolled node: its id and the files of its identity."""

    id: str
    cert: Path
    key: Path
    center: CenterProcess

    def client(self) -> httpx.Client:
        tls = ssl.create_default_context(cafile=str(self.center.ca_file))
        tls.load_cert_chain(str(self.cert), str(self.key))
        return httpx.Client(base_url=self.center.url, verify=tls, timeout=30)


@pytest.fixture(scope="session")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterProcess]:
    tmp = tmp_path_factory.mktemp("adversarial")
    bare, _work = seeded(tmp)
    proc = CenterProcess(repo=bare, data=tmp / "data")
    try:
        proc.start()

        def released() -> bool:
            return bool(proc.get("/v1/releases", params={"group": "checkout"})["releases"])

        wait_for(released, timeout=30, what="the first releases")
        yield proc
    finally:
        proc.stop()
    log = proc.output()
    if "Traceback" in log:
        at = log.index("Traceback")
        pytest.fail(
            f"the Center's log ({proc.log}) holds a traceback:\n{log[max(0, at - 500) : at + 3000]}"
        )


@pytest.fixture(scope="session")
def node(center: CenterProcess, tmp_path_factory: pytest.TempPathFactory) -> Node:
    join = center.request("POST", "/v1/join-tokens", json={"groups": ["checkout"]})
    assert join.status_code == 201, join.text
    csr, key = csr_pem()
    with httpx.Client(verify=center.verify, timeout=30) as http:
        body = {"token": join.json()["token"], "csr": csr, "name": "adversary-1"}
        enrolled = http.post(f"{center.url}/v1/enroll", json=body)
    assert enrolled.status_code == 200, enrolled.text
    where = tmp_path_factory.mktemp("node")
    (where / "node.crt").write_text(enrolled.json()["certificate"])
    (where / "node.key").write_bytes(key)
    (where / "node.key").chmod(0o600)
    return Node(enrolled.json()["node_id"], where / "node.crt", where / "node.key", center)
