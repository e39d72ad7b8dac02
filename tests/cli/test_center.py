"""``konorkestra center --db``: a database it cannot use is one clear line, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from konorkestra.cli.center import center
from tests.helpers.postgres import PostgresServer


def start(tmp_path: Path, db: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        center, ["--repo", str(tmp_path / "repo"), "--data", str(tmp_path / "data"), "--db", db]
    )
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_an_unreachable_postgresql_is_one_line_without_the_password(tmp_path: Path) -> None:
    code, out = start(tmp_path, f"postgresql://center:s3cret@/k?host={tmp_path}/no-such-dir")
    assert code == 1
    [line] = out.strip().splitlines()
    assert line.startswith("Error: store: cannot connect to postgresql://center:***@/k")
    assert "no-such-dir" in line and "s3cret" not in line


def test_a_missing_driver_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails
    code, out = start(tmp_path, "postgresql://center@db.invalid/k")
    assert code == 1
    [line] = out.strip().splitlines()
    assert "psycopg is not installed" in line and "konorkestra[postgres]" in line


def test_a_refused_login_names_the_server_s_reason(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    code, out = start(tmp_path, postgres_server.url("postgres", driver="postgresql").replace(
        "postgres@", "ghost@"))  # fmt: skip
    assert code == 1
    [line] = out.strip().splitlines()
    assert 'role "ghost" does not exist' in line


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--freshness-ttl", "soon", "--freshness-ttl"),
        ("--node-cert-lifetime", "0s", "positive"),
        ("--report-retention", "a week", "--report-retention"),
        ("--report-retention", "0s", "positive"),
        ("--report-retention", "200h", "7 days"),
    ],
)
def test_durations_are_checked_before_anything_starts(
    tmp_path: Path, flag: str, value: str, message: str
) -> None:
    result = CliRunner().invoke(center, ["--repo", str(tmp_path), flag, value])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "data").exists()


def test_connections_to_the_center_socket_send_without_waiting_for_acks() -> None:
    """TCP_NODELAY on every accepted connection: an answer's headers and body leave at
    once instead of the body waiting ~40 ms for the client's delayed ACK (Nagle)."""
    import asyncio
    import socket

    from konorkestra.cli.center import _bind

    async def scenario() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=_bind("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(seen, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(scenario()) != 0


def test_the_center_socket_queues_a_fleets_reconnects() -> None:
    """The listen backlog is BACKLOG (as the kernel allows), not Python's 128."""
    import shutil
    import subprocess

    from konorkestra.cli.center import BACKLOG, _bind

    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2) to read a listening socket's backlog")
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    with _bind("127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
    assert int(out[2]) == min(BACKLOG, somaxconn)  # Send-Q of a listener: its backlog
