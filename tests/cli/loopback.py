"""Real servers on loopback for konorctl's connection tests (no mocks).

Example::

    with tls_server(tmp_path, hosts=["127.0.0.1"]) as server:
        server.url        # https://127.0.0.1:PORT; every GET answers JSON (see _app)
        server.ca_file    # the CA that signed its certificate

Each server is a real uvicorn on a pre-bound ``127.0.0.1:0`` socket (no port
race), run in a thread and stopped on exit; start-up waits on ``started`` with
a deadline, never a sleep.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from konorkestra.center.pki.ca import CertificateAuthority
from tests.helpers.poll import wait_for

NODE = {
    "id": "node-0123456789abcdef0123456789abcdef0123456789abcdef",
    "name": "checkout-fra1-with-a-rather-long-hostname-0042.prod.example.internal",
    "status": "active",
    "groups": ["checkout", "payments", "search-frontend"],
    "cert_not_after": "2026-12-03T17:26:10.123456+00:00",
    "last_seen": "2026-12-02T17:26:10.654321+00:00",
    "labels": {"dc": "fra1"},
}


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every request with JSON echoing what it saw (path, Authorization)
    plus a one-node list under ``nodes``; ignores lifespan."""
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    answer = {
        "path": scope["path"],
        "authorization": headers.get(b"authorization", b"").decode(),
        "nodes": [NODE],
    }
    body = json.dumps(answer).encode()
    head = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": head})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class Server:
    url: str
    ca_file: Path | None = None

    @property
    def hostport(self) -> str:
        return self.url.split("://", 1)[1]


def make_ca(directory: Path) -> tuple[CertificateAuthority, Path]:
    """A fresh Center CA in ``directory``; returns it and its ``ca.crt``."""
    ca = CertificateAuthority.load_or_create(directory, trust_domain="test.local")
    return ca, directory / "ca.crt"


def _bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def _serve(config: uvicorn.Config, scheme: str) -> Iterator[str]:
    sock = _bound()
    port = sock.getsockname()[1]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=10)
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def http_server() -> Iterator[Server]:
    """A plain-HTTP server."""
    config = uvicorn.Config(_app, log_level="error", lifespan="off")
    with _serve(config, "http") as url:
        yield Server(url)


@contextmanager
def tls_server(tmp_path: Path, hosts: list[str]) -> Iterator[Server]:
    """An HTTPS server whose certificate names ``hosts``, signed by a fresh CA."""
    ca, ca_file = make_ca(tmp_path / "server-ca")
    cert, key = ca.issue_server_certificate(hosts)
    (tmp_path / "server.crt").write_bytes(cert)
    (tmp_path / "server.key").write_bytes(key)
    config = uvicorn.Config(
        _app,
        log_level="critical",
        lifespan="off",
        ssl_certfile=str(tmp_path / "server.crt"),
        ssl_keyfile=str(tmp_path / "server.key"),
    )
    with _serve(config, "https") as url:
        yield Server(url, ca_file)


@contextmanager
def closed_port() -> Iterator[Server]:
    """A port that is bound but not listening: connecting is refused, and no one
    else can take the port while the test runs."""
    sock = _bound()
    try:
        yield Server(f"https://127.0.0.1:{sock.getsockname()[1]}")
    finally:
        sock.close()


@contextmanager
def silent_server() -> Iterator[Server]:
    """A port that accepts connections (kernel backlog) but never answers."""
    sock = _bound()
    sock.listen(8)
    try:
        yield Server(f"https://127.0.0.1:{sock.getsockname()[1]}")
    finally:
        sock.close()


def _answering(answers: dict[str, Any]) -> Any:
    """An ASGI app answering ``GET path`` with ``answers[path]`` as JSON (404 otherwise)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        found = scope["path"] in answers
        body = json.dumps(answers[scope["path"]] if found else {"error": {
            "code": "not_found", "message": f"nothing at {scope['path']}"}}).encode()  # fmt: skip
        head = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200 if found else 404,
                    "headers": head})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    return app


@contextmanager
def json_server(answers: dict[str, Any]) -> Iterator[Server]:
    """A plain-HTTP server answering each path of ``answers`` (query ignored) with
    its JSON, and 404 with the Center's error shape elsewhere."""
    config = uvicorn.Config(_answering(answers), log_level="error", lifespan="off")
    with _serve(config, "http") as url:
        yield Server(url)
