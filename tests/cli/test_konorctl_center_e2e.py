"""konorctl against a real ``konorkestra center`` process: the CA hint points at
the file the Center really wrote, login saves a context that later commands use,
and plain HTTP to its TLS port is named as such."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.center_proc import CenterProcess
from tests.helpers.configrepo import seeded

KONORCTL = str(Path(sys.executable).parent / "konorctl")


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterProcess]:
    tmp = tmp_path_factory.mktemp("konorctl-e2e")
    bare, _ = seeded(tmp)
    # the Center's default data directory under this XDG_DATA_HOME, so the hint
    # konorctl prints (the default <data>/ca.pem) is the file this Center wrote
    data = tmp / "xdg-data" / "konorkestra" / "center"
    data.parent.mkdir(parents=True)  # the helper logs next to the data directory
    with CenterProcess(repo=bare, data=data) as running:
        yield running


def konorctl(center: CenterProcess, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONORCTL_")}
    env |= {"KONORCTL_CONFIG": str(tmp / "konorctl.yaml"),
            "XDG_DATA_HOME": str(center.data.parents[1])}  # fmt: skip
    return subprocess.run([KONORCTL, *args], capture_output=True, text=True, env=env, timeout=60)


def test_without_a_ca_the_hint_names_the_file_the_center_wrote(
    center: CenterProcess, tmp_path: Path
) -> None:
    result = konorctl(center, tmp_path, "nodes", "--center", center.url)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "pass --ca FILE or set KONORCTL_CA" in result.stderr
    assert str(center.ca_file) in result.stderr and center.ca_file.is_file()


def test_login_then_commands_use_the_context(center: CenterProcess, tmp_path: Path) -> None:
    login = konorctl(center, tmp_path, "login", "--name", "local", "--center", center.url,
                     "--ca", str(center.ca_file), "--token", center.admin_token)  # fmt: skip
    assert login.returncode == 0, login.stderr
    listed = konorctl(center, tmp_path, "nodes", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    assert (
        center.admin_token.split(".")[1] not in konorctl(center, tmp_path, "config", "view").stdout
    )


def test_plain_http_to_the_centers_tls_port(center: CenterProcess, tmp_path: Path) -> None:
    plain = center.url.replace("https://", "http://")
    result = konorctl(center, tmp_path, "nodes", "--center", plain, "--ca", str(center.ca_file))
    hostport = center.url.split("://")[1]
    assert f"{hostport} speaks TLS; use https://{hostport}" in result.stderr
