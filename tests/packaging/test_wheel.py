"""The wheel builds, installs into a clean venv without the source tree, and runs.

Built with ``python -m build --wheel`` from a temp copy of exactly what the
Containerfiles copy (so a file the build needs but the images lack fails here),
installed with its dependencies from the index into a fresh venv (no system
site-packages, no editable path), and run from a directory outside the
repository: ``--help`` of both console scripts, the version, and a real Center
that serves its dashboard's templates and static files from the installed
package. Every data file under ``konorkestra/`` that Git tracks must be in the
wheel.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import konorkestra
from tests.helpers.configrepo import seeded
from tests.helpers.git import git_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "packaging" / "container" / "Containerfile.center"


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path
    cwd: Path

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(args, cwd=self.cwd, capture_output=True, text=True, timeout=120,
                             env=env or clean_env(), check=False)  # fmt: skip
        assert out.returncode == 0, f"{args}: {out.stdout}\n{out.stderr}"
        return out


def clean_env() -> dict[str, str]:
    """The environment without anything that could point back at the checkout."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "KONORCTL_", "KONORKESTRA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = "/usr/bin:/bin"
    return env


def build_inputs() -> list[str]:
    """The repository paths the Containerfile's wheel stage copies."""
    text = CONTAINERFILE.read_text().split("\nFROM ", 2)[1]  # the first (wheel) stage
    paths: list[str] = []
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            paths.extend(line.split()[1:-1])
    return paths


def tracked_files(rel: str) -> set[str]:
    """Files Git tracks under ``rel``, a symlinked directory listed as the files inside it."""
    out = subprocess.run(["git", "ls-files", rel], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.split()  # fmt: skip
    files: set[str] = set()
    for path in out:
        if (ROOT / path).is_symlink() and (ROOT / path).is_dir():
            target = os.path.relpath((ROOT / path).resolve(), ROOT)
            files |= {path + f[len(target) :] for f in tracked_files(target)}
        else:
            files.add(path)
    return files


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for rel in build_inputs():
        if (ROOT / rel).is_dir():
            # symlinks=True: as COPY does, a link (konorkestra/schema -> ../schema) stays a
            # link, so a target the Containerfile forgets to copy breaks this build too.
            shutil.copytree(ROOT / rel, src / rel, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        else:
            shutil.copy2(ROOT / rel, src / rel)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp / "dist"),
                    str(src)], check=True, capture_output=True, timeout=600)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("konorkestra-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True, timeout=600)  # fmt: skip
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    return Installed(wheel, venv / "bin", cwd)


def test_wheel_holds_every_tracked_data_file(installed: Installed) -> None:
    data = {p for p in tracked_files("konorkestra") if not p.endswith(".py")}
    assert data, "no data files found: the check would mean nothing"
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert data - names == set()


def test_installed_package_is_not_the_checkout(installed: Installed) -> None:
    code = "import konorkestra; print(konorkestra.__file__, konorkestra.__version__)"
    out = installed.run(str(installed.bin / "python"), "-c", code)
    where, version = out.stdout.split()
    assert Path(where).is_relative_to(installed.bin.parent), where
    assert version == konorkestra.__version__
    wheel_version = re.match(r"konorkestra-([^-]+)-", installed.wheel.name)
    assert wheel_version and wheel_version.group(1) == konorkestra.__version__


@pytest.mark.parametrize(
    ("script", "words"),
    [("konorkestra", ("center", "agent", "demo")), ("konorctl", ("validate",))],
)
def test_console_scripts_run(installed: Installed, script: str, words: tuple[str, ...]) -> None:
    help_text = installed.run(str(installed.bin / script), "--help").stdout
    assert all(word in help_text for word in words), help_text
    version = installed.run(str(installed.bin / "konorkestra"), "--version").stdout
    assert konorkestra.__version__ in version


def test_installed_center_serves_its_dashboard(installed: Installed, tmp_path: Path) -> None:
    bare, _work = seeded(tmp_path)
    data = tmp_path / "center"
    env = {**clean_env(), **git_env()}
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(tmp_path / "notify"))
        notify.settimeout(60)
        env["NOTIFY_SOCKET"] = str(tmp_path / "notify")
        args = [str(installed.bin / "konorkestra"), "center", "--repo", str(bare), "--data",
                str(data), "--listen", "127.0.0.1:0", "--log-level", "warning"]  # fmt: skip
        with open(tmp_path / "center.log", "wb") as log:
            proc = subprocess.Popen(args, cwd=installed.cwd, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)  # fmt: skip
        try:
            try:
                assert notify.recv(4096).startswith(b"READY=1")
            except TimeoutError:
                raise AssertionError((tmp_path / "center.log").read_text()) from None
            url = (data / "center.url").read_text().strip()
            verify = ssl.create_default_context(cafile=str(data / "ca.pem"))
            login = httpx.get(f"{url}/ui/login", verify=verify, timeout=10)
            assert login.status_code == 200 and "<form" in login.text
            css = httpx.get(f"{url}/ui/static/app.css", verify=verify, timeout=10)
            assert (
                css.status_code == 200
                and css.text == (ROOT / "konorkestra/center/ui/static/app.css").read_text()
            )
        finally:
            proc.terminate()
            proc.wait(15)
