"""``packaging/systemd``: both units pass ``systemd-analyze verify`` and say what we honour.

``verify`` checks that ``ExecStart=`` names an executable, so it runs on a temp
copy whose ``/opt/konorkestra/bin/`` is this venv's ``bin/`` (where the console
scripts really are). ``verify`` only *warns* (exit 0) on an unknown key or a bad
value, so any line it prints about the unit counts as a failure too; deliberately
broken copies prove the check fails. Without ``systemd-analyze`` the verify tests
skip, except under ``KONORKESTRA_REQUIRE_ALL=1`` (CI installs ``systemd``).
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.commandline import problems

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "packaging" / "systemd"
NAMES = ("konorkestra-center.service", "konorkestra-agent.service")
INSTALLED_BIN = "/opt/konorkestra/bin/"
VENV_BIN = Path(sys.executable).parent
COMMANDS = {"konorkestra-center.service": ["center"], "konorkestra-agent.service": ["agent", "run"]}


def analyze() -> str:
    found = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    if not os.access(found, os.X_OK):
        why = "systemd-analyze not found (Debian package: systemd)"
        if os.environ.get("KONORKESTRA_REQUIRE_ALL") == "1":
            pytest.fail(f"{why} (KONORKESTRA_REQUIRE_ALL=1)")
        pytest.skip(why)
    return found


def verify(unit: Path) -> list[str]:
    """Problems ``systemd-analyze verify`` finds in ``unit`` (empty: it passes)."""
    out = subprocess.run([analyze(), "verify", str(unit)], capture_output=True, text=True,
                         timeout=60, check=False)  # fmt: skip
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if unit.name in ln]
    if out.returncode != 0 and not lines:
        lines = [f"exit {out.returncode}: {out.stderr.strip()}"]
    return lines


def local_copy(name: str, tmp: Path, *, edit: tuple[str, str] | None = None) -> Path:
    """The unit with the venv's console scripts in place of the installed path."""
    text = (UNITS / name).read_text()
    if edit is not None:
        assert edit[0] in text, edit
        text = text.replace(*edit)
    text = text.replace(INSTALLED_BIN, f"{VENV_BIN}/")
    path = tmp / name
    path.write_text(text)
    return path


def service(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser["Service"]


@pytest.mark.parametrize("name", NAMES)
def test_unit_passes_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    assert verify(local_copy(name, tmp_path)) == []


@pytest.mark.parametrize(
    "edit",
    [
        ("Type=notify", "Tipe=notify"),  # an unknown key: verify warns, exit 0
        ("Type=notify", "Type=notifyy"),  # a bad value: verify warns, exit 0
        ("Restart=on-failure", "Restart=sometimes"),
        (f"{INSTALLED_BIN}konorkestra", "/nonexistent/konorkestra"),  # exit 1
    ],
    ids=["unknown-key", "bad-type", "bad-restart", "missing-binary"],
)
def test_verify_fails_on_a_broken_unit(edit: tuple[str, str], tmp_path: Path) -> None:
    assert verify(local_copy("konorkestra-agent.service", tmp_path, edit=edit)) != []


@pytest.mark.parametrize("name", NAMES)
def test_unit_runs_hardened_as_its_own_user_and_notifies(name: str) -> None:
    svc = service(name)
    assert svc["Type"] == "notify"
    assert svc["User"] not in ("", "root") and svc["User"].startswith("konorkestra-")
    expected = {"ProtectSystem": "strict", "ProtectHome": "yes", "NoNewPrivileges": "yes",
                "PrivateTmp": "yes", "Restart": "on-failure"}  # fmt: skip
    assert {k: svc.get(k) for k in expected} == expected
    assert svc.get("StateDirectory") and svc.get("RestartSec")
    # A setting we accept is a setting we honour: neither daemon reloads on SIGHUP.
    assert "ExecReload" not in svc


@pytest.mark.parametrize("name", NAMES)
def test_exec_start_uses_real_commands_and_options(name: str) -> None:
    argv = shlex.split(service(name)["ExecStart"])
    assert argv[0] == f"{INSTALLED_BIN}konorkestra"
    assert argv[1 : 1 + len(COMMANDS[name])] == COMMANDS[name]
    assert "--data" in argv
    assert problems("konorkestra", argv[1:]) == []
    assert problems("konorkestra", [*argv[1:], "--no-such-option"]) != []


def test_agent_socket_lives_in_its_runtime_directory() -> None:
    svc = service("konorkestra-agent.service")
    argv = shlex.split(svc["ExecStart"])
    socket = argv[argv.index("--socket") + 1]
    assert socket == f"%t/{svc['RuntimeDirectory']}/agent.sock"
    assert argv[argv.index("--data") + 1] == f"%S/{svc['StateDirectory']}"


def test_sysusers_declares_each_unit_user() -> None:
    declared = {
        line.split()[1]
        for line in (UNITS / "konorkestra.sysusers").read_text().splitlines()
        if line.startswith("u ")
    }
    assert declared == {service(name)["User"] for name in NAMES}
