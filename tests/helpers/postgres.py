"""A throwaway PostgreSQL for tests: one server per session, one fresh database per test.

Example::

    server = PostgresServer.start(find_bin_dir())  # initdb + pg_ctl -w start, in a temp dir
    url = server.create_database()  # postgresql+psycopg://postgres@/k1?host=<temp dir>
    ...
    server.drop_database(url)
    server.stop()  # and the cluster is gone

The server listens on a Unix socket in its own temp directory only (no TCP
port, so nothing to race for), trusts local connections as ``postgres`` and runs
with ``fsync=off``. ``initdb`` refuses to run as root, so under root the cluster
belongs to ``nobody`` and the server runs as ``nobody`` (``runuser``).

The pytest fixtures (``postgres_server``, ``postgres_url``) skip when no
PostgreSQL binaries are found, and fail instead under ``KONORKESTRA_REQUIRE_ALL=1``.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SEARCH = ("/usr/local/bin", "/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin")
"""Where PostgreSQL's server binaries live besides PATH (Debian keeps them off PATH)."""


def find_bin_dir() -> Path | None:
    """A directory holding both ``initdb`` and ``pg_ctl``, newest version first."""
    found = shutil.which("pg_ctl")
    candidates = [str(Path(found).parent)] if found else []
    for pattern in SEARCH:
        matches = glob.glob(pattern)
        candidates += sorted(matches, key=_version_key, reverse=True)
    for candidate in candidates:
        bin_dir = Path(candidate)
        if all(os.access(bin_dir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return bin_dir
    return None


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in Path(path).parent.name.split(".") if p.isdigit())


@dataclass
class PostgresServer:
    """A running throwaway cluster (see the module docstring)."""

    bin_dir: Path
    root: Path
    """Temp directory: ``data/`` (the cluster), the socket, ``server.log``."""
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def socket_dir(self) -> str:
        return str(self.root)

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @classmethod
    def start(cls, bin_dir: Path, *, timeout: float = 60.0) -> PostgresServer:
        root = Path(tempfile.mkdtemp(prefix="konorkestra-pg-"))
        server = cls(bin_dir, root)
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to nobody
            nobody = pwd.getpwnam("nobody")
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
        try:
            server._run(
                "initdb", "-D", str(root / "data"), "-A", "trust", "-U", "postgres",
                "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
            )  # fmt: skip
            options = (
                f"-c listen_addresses='' -k {root} -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=200"
            )
            server._run(
                "pg_ctl", "-D", str(root / "data"), "-l", str(server.log), "-o", options,
                "-w", "-t", str(int(timeout)), "start",
            )  # fmt: skip
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "nobody", "--", *command]
        proc = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, check=False, timeout=120
        )
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{tool} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
                + (f"\nserver log:\n{log}" if log else "")
            )

    def url(self, database: str, *, driver: str = "postgresql+psycopg") -> str:
        """The SQLAlchemy URL of ``database`` on this server, over its Unix socket."""
        return f"{driver}://postgres@/{database}?host={self.socket_dir}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host=self.socket_dir, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.encode())

    def create_database(self) -> str:
        """A new, empty database; returns its URL."""
        name = f"k{next(self._names)}"
        self._admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url``, closing whatever connections a test left open."""
        name = url.split("?", 1)[0].rsplit("/", 1)[1]
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            # the directory goes anyway; a stray server dies with its socket dir
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _unavailable(why: str) -> None:
    if os.environ.get("KONORKESTRA_REQUIRE_ALL") == "1":
        pytest.fail(f"PostgreSQL tests cannot run: {why} (KONORKESTRA_REQUIRE_ALL=1)")
    pytest.skip(f"PostgreSQL tests skipped: {why}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole session."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is not installed (pip install -e '.[dev]')")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        _unavailable(f"no initdb/pg_ctl on PATH or in {', '.join(SEARCH)}")
    assert bin_dir is not None
    server = PostgresServer.start(bin_dir)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test; dropped after it."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)
