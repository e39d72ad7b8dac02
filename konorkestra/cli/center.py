"""``konorkestra center``: run the Center (store, Git ingest, signing, HTTP API).

The first start initializes the data directory (store, signing keys, trust
root) and prints an admin API token once. The URL actually served (useful with
``--listen 127.0.0.1:0``) is printed and written to ``<data>/center.url``.

Stopping (SIGTERM or SIGINT): the Center stops accepting, answers every parked
agent long-poll at once with "nothing new" (agents re-poll and reconnect with
their back-off), closes idle connections, stops its services and exits, within
about a second and without a traceback. A request that is really busy gets
:data:`STOP_TIMEOUT` seconds; a second SIGINT quits at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import os
import socket
import sys
from pathlib import Path

import click

DEFAULT_LISTEN = "127.0.0.1:7400"
STOP_TIMEOUT = 2
"""Seconds a stop waits for requests still busy (not parked ones: they answer at once)."""
BACKLOG = 4096
"""Connections the kernel queues for the Center before it accepts them (capped by
``net.core.somaxconn``): a fleet of thousands reconnecting after a restart arrives at
once, and a full queue drops connection attempts that then wait 1, 3, 7 s to retry."""


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "konorkestra" / "center"


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> dt.timedelta:
    """A click callback: ``90s``, ``5m``, ``24h`` → a positive timedelta."""
    from konorkestra.model.durations import DurationError, parse_duration

    try:
        seconds = parse_duration(value)
    except DurationError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds <= 0:
        raise click.BadParameter("must be positive")
    return dt.timedelta(seconds=seconds)


def parse_listen(text: str, *, tls: bool = True) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"{text!r}: use HOST:PORT, e.g. {DEFAULT_LISTEN}")
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    if not loopback and not tls:
        raise click.BadParameter(
            f"{host!r} is not a loopback address; with --no-tls the Center serves plain "
            "HTTP, so it listens on loopback only (127.0.0.1, ::1 or localhost)"
        )
    return host, int(port)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, made here so the Center knows its port before serving.

    Its protocol is named (``IPPROTO_TCP``, as ``getaddrinfo`` would give): asyncio
    sets ``TCP_NODELAY`` only on accepted sockets whose ``proto`` is TCP, and
    without it every answer written in two parts (headers, then body) waited for
    the client's delayed ACK: 40 ms more on every request. It queues
    :data:`BACKLOG` connections.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


@click.command("center")
@click.option("--repo", required=True, help="Config repo: a local path (bare or not) or a URL.")
@click.option("--branch", default="main", show_default=True, help="Branch to release from.")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory [default: $XDG_DATA_HOME/konorkestra/center].",
)
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, help="HOST:PORT (loopback).")
@click.option(
    "--db",
    "db_url",
    default=None,
    help="Database URL, e.g. postgresql://user@host/konorkestra [default: SQLite in --data].",
)
@click.option(
    "--poll",
    "poll_interval",
    type=float,
    default=None,
    help="Seconds between safety-net polls (remote: fetch interval).",
)
@click.option("--no-watch", is_flag=True, help="Do not watch a local repo; poll only.")
@click.option(
    "--tls/--no-tls",
    default=True,
    show_default=True,
    help="Serve HTTPS with the Center's own CA (agents authenticate with client certificates).",
)
@click.option(
    "--tls-cert",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="External server certificate (PEM) instead of one issued by the Center's CA.",
)
@click.option(
    "--tls-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Private key for --tls-cert.",
)
@click.option(
    "--tls-ca",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="CA that issued --tls-cert (what agents pin and trust).",
)
@click.option(
    "--tls-san",
    "tls_sans",
    multiple=True,
    help="Extra DNS name or IP for the server certificate (repeatable).",
)
@click.option(
    "--trust-domain",
    default="konorkestra.local",
    show_default=True,
    help="SPIFFE trust domain of node identities.",
)
@click.option(
    "--freshness-ttl",
    default="5m",
    show_default=True,
    callback=_duration,
    help="How long agents may serve config as fresh without hearing from the Center; "
    "after that their answers say stale (they keep serving).",
)
@click.option(
    "--node-cert-lifetime",
    default="24h",
    show_default=True,
    callback=_duration,
    help="Lifetime of node certificates issued at join and renewal (agents renew at 2/3).",
)
@click.option(
    "--report-retention",
    default="168h",
    show_default=True,
    callback=_duration,
    help="How long the Center keeps node reports (metrics, deliveries, acks); each node's "
    "current applied release and its processes' last delivery and ack stay. At most 7 days.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def center(
    repo: str,
    branch: str,
    data_dir: Path | None,
    listen: str,
    db_url: str | None,
    poll_interval: float | None,
    no_watch: bool,
    tls: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
    tls_sans: tuple[str, ...],
    trust_domain: str,
    freshness_ttl: dt.timedelta,
    node_cert_lifetime: dt.timedelta,
    report_retention: dt.timedelta,
    log_level: str,
) -> None:
    """Run the Center: ingest REPO's BRANCH, sign Releases, serve the API."""
    host, port = parse_listen(listen, tls=tls)
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    import uvicorn  # imported late: `konorkestra --help` stays fast

    from konorkestra import sdnotify
    from konorkestra.center.app.factory import begin_shutdown
    from konorkestra.center.app.graceful import GracefulServer
    from konorkestra.center.app.server import CenterSetupError, build
    from konorkestra.center.pki.uvicornhook import CenterServer
    from konorkestra.durable import atomic_write

    data = data_dir or default_data_dir()
    try:
        built = build(
            data=data,
            repo=repo,
            branch=branch,
            db_url=db_url,
            poll_interval=poll_interval,
            watch=not no_watch,
            hosts=sorted({"127.0.0.1", "::1", "localhost", host, *tls_sans}),
            trust_domain=trust_domain,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_ca=tls_ca,
            freshness_ttl=freshness_ttl,
            node_cert_lifetime=node_cert_lifetime,
            report_retention=report_retention,
        )
    except CenterSetupError as exc:
        raise click.ClickException(str(exc)) from None
    if built.admin_token:
        click.echo(
            "First start: created an admin API token (shown once; also in "
            f"{built.admin_token_path}, mode 0600):"
        )
        click.echo(f"  {built.admin_token}")
    sock = _bind(host, port)
    actual = sock.getsockname()[1]
    scheme = "https" if tls else "http"
    url = f"{scheme}://{'[' + host + ']' if ':' in host else host}:{actual}"
    # ca.pem before center.url, each replaced atomically: whoever sees the URL can
    # already read the whole CA certificate that verifies it.
    if tls:
        ca_path = data / "ca.pem"
        atomic_write(ca_path, built.tls.creds.anchor_pem, 0o644)
    atomic_write(data / "center.url", (url + "\n").encode(), 0o644)
    click.echo(f"konorkestra center: serving {url} (repo {repo}, branch {branch})")
    if tls:
        click.echo(f"CA pin: {built.tls.pin}  (CA certificate for konorctl --ca: {ca_path})")
    sys.stdout.flush()
    # Stopping (SIGTERM/SIGINT): parked long-polls answer "nothing new" at once (the
    # drain hook), connections close, then services stop. The graceful timeout only
    # bounds a request that is really busy; nothing parked waits for it.
    server: GracefulServer
    if not tls:
        config = uvicorn.Config(built.app, log_level=log_level, access_log=False, lifespan="on",
                                timeout_graceful_shutdown=STOP_TIMEOUT)  # fmt: skip
        server = GracefulServer(config)
    else:
        server = built.tls.server(
            built.app, host=host, port=actual, log_level=log_level, access_log=False,
            lifespan="on", timeout_graceful_shutdown=STOP_TIMEOUT,
        )  # fmt: skip
    # systemd (Type=notify): READY once the listener serves and the store is open
    # (build() opened it), STOPPING as soon as a stop begins.
    server.when_serving.append(lambda: sdnotify.notify(sdnotify.READY))
    server.before_shutdown.append(lambda: sdnotify.notify(sdnotify.STOPPING))
    server.before_shutdown.append(lambda: begin_shutdown(built.ctx))
    server.run(sockets=[sock])
    if isinstance(server, CenterServer) and server.self_test_error is not None:
        raise click.ClickException(f"TLS self-test failed: {server.self_test_error}")
