"""``-o table|wide|json|yaml`` and tables that never wrap or cut when piped."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from konorkestra.cli.konorctl import cli
from konorkestra.cli.output import center_options, print_table
from tests.cli.loopback import NODE, Server, tls_server

KONORCTL = str(Path(sys.executable).parent / "konorctl")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CENTER", "TOKEN", "CA", "CONTEXT"):
        monkeypatch.delenv(f"KONORCTL_{name}", raising=False)
    monkeypatch.setenv("KONORCTL_CONFIG", str(tmp_path / "none.yaml"))
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def server(tmp_path: Path) -> object:
    with tls_server(tmp_path, ["127.0.0.1"]) as running:
        yield running


def nodes(server: Server, *args: str) -> str:
    result = CliRunner().invoke(
        cli, ["--center", server.url, "--ca", str(server.ca_file), "nodes", *args]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def the_row_is_on_one_line(out: str) -> None:
    assert "more lines" not in out
    rows = [line for line in out.splitlines() if NODE["id"] in line]
    assert len(rows) == 1, out
    for value in (NODE["name"], NODE["cert_not_after"], NODE["last_seen"]):
        assert value in rows[0]


def test_a_piped_table_keeps_each_row_on_one_line(server: Server) -> None:
    out = nodes(server)
    the_row_is_on_one_line(out)
    assert len(out.splitlines()) == 5  # top border, header, rule, the row, bottom border


def test_the_real_konorctl_piped_keeps_rows_whole(server: Server) -> None:
    env = {**os.environ, "KONORCTL_CA": str(server.ca_file)}
    proc = subprocess.run(
        [KONORCTL, "nodes", "--center", server.url], capture_output=True, text=True,
        env=env, timeout=60, check=True,
    )  # fmt: skip
    the_row_is_on_one_line(proc.stdout)


def test_json_and_yaml_are_the_same_document(server: Server) -> None:
    as_json = json.loads(nodes(server, "-o", "json"))
    as_yaml = YAML(typ="safe").load(nodes(server, "-o", "yaml"))
    assert as_json == as_yaml == [NODE]


def test_wide_keeps_the_tables_columns_and_adds_its_own(server: Server) -> None:
    table, wide = nodes(server).splitlines(), nodes(server, "-o", "wide").splitlines()
    header = [c.strip() for c in table[1].split("┃") if c.strip()]
    assert [c.strip() for c in wide[1].split("┃") if c.strip()][: len(header)] == header
    assert "labels" in wide[1] and "labels" not in table[1]


@click.command("wide-probe")
@center_options
def wide_probe(center: str | None, token: str | None, output: str) -> None:
    """Print a table with one wide-only column (test only)."""
    print_table(None, ["name", "detail"], [("a", "only wide")], "none", wide_only=["detail"])


@pytest.mark.parametrize(("fmt", "shown"), [("table", False), ("wide", True)])
def test_wide_only_columns_appear_with_o_wide(fmt: str, shown: bool) -> None:
    cli.add_command(wide_probe)
    try:
        out = CliRunner().invoke(cli, ["wide-probe", "-o", fmt]).stdout
    finally:
        cli.commands.pop("wide-probe")
    assert ("only wide" in out) is shown and " a " in out


def test_on_a_terminal_the_table_fits_its_width(server: Server) -> None:
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    env = {**os.environ, "KONORCTL_CA": str(server.ca_file), "TERM": "dumb-but-sized"}
    env.pop("COLUMNS", None)
    proc = subprocess.run(
        [KONORCTL, "nodes", "--center", server.url], stdout=follower, stderr=subprocess.PIPE,
        env=env, timeout=60, check=True,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())  # colours
    lines = [line for line in out.replace("\r", "").splitlines() if line.strip()]
    assert proc.returncode == 0 and lines
    assert max(len(line) for line in lines) <= 100, out
    assert NODE["id"][:8] in out and len(lines) > 5  # wrapped to fit, not cut
