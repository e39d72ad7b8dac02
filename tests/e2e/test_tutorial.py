"""README's tutorial, run as written: every ```sh block of "## Tutorial", in order,
in one bash session in an empty directory, with real processes and ``git``.

Only the Center's port is changed (7400 → a free one). Between blocks the test
waits, with deadlines, for what the prose promises: the app's first line, its
reaction to the push, the Center's view of the process and its ack; then it does
the closing paragraph's invalid edit and checks the app kept its config.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from konorkestra.demo.procs import wait_until

README = Path(__file__).resolve().parents[2] / "README.md"
DONE = "@@block-done@@"


def tutorial_blocks() -> list[str]:
    """The ```sh blocks of README's "## Tutorial" section, in order."""
    text = README.read_text()
    start = text.index("\n## Tutorial")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end >= 0 else len(text)]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Shell:
    """One ``bash`` fed block by block; its output is collected line by line."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd, env=env, text=True, start_new_session=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.run("set -e")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def run(self, block: str, timeout: float = 60.0) -> str:
        """Run ``block``; its output. Fails if a command fails (``set -e`` ends the shell)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{block}\necho {DONE}\n")
        self.proc.stdin.flush()
        out: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"block timed out after {timeout}s:\n{block}\n--- output:\n{out}")
            if line is None:
                pytest.fail(f"block failed (exit {self.proc.wait()}):\n{block}\n--- output:\n{out}")
            if line == DONE:
                return "\n".join(out)
            out.append(line)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)  # bash and its background jobs
        self.proc.wait(timeout=30)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    bindir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KONORCTL_", "KONORKESTRA_"))}
    env.update(
        PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(tmp_path),  # no konorctl login or git config of the user's leaks in
        GIT_AUTHOR_NAME="Tutorial", GIT_AUTHOR_EMAIL="tutorial@example.invalid",
        GIT_COMMITTER_NAME="Tutorial", GIT_COMMITTER_EMAIL="tutorial@example.invalid",
    )  # fmt: skip
    sh = Shell(tmp_path, env)
    try:
        yield sh
    finally:
        sh.close()


def test_the_readme_tutorial_works_as_written(shell: Shell, tmp_path: Path) -> None:
    try:
        follow_the_tutorial(shell, tmp_path)
    except BaseException:
        for log in ("center.log", "agent.log", "app.log"):  # pytest shows these on failure
            path = tmp_path / log
            print(f"--- {log}:\n{path.read_text()[-4000:] if path.exists() else '(none)'}")
        raise


def follow_the_tutorial(shell: Shell, tmp_path: Path) -> None:
    blocks = tutorial_blocks()
    assert len(blocks) == 6, "the tutorial's steps changed; update this test's waits"
    port = str(free_port())
    repo, center, node, app, change, show = (b.replace("7400", port) for b in blocks)
    app_log = tmp_path / "app.log"

    def log_has(text: str) -> bool:
        return app_log.exists() and text in app_log.read_text()

    assert "valid" in shell.run(repo)
    shell.run(center)
    shell.run(node)
    shell.run(app)
    wait_until(lambda: log_has("start: Hello"), timeout=30, what="the app's first config")
    shell.run(change)
    wait_until(lambda: log_has("changed: Bonjour in web-2-"), timeout=30, what="the app's reload")

    def shown() -> str | None:
        out = shell.run(show)
        return out if "ack applied" in out and "[greeter]: saw web-2-" in out else None

    wait_until(shown, timeout=30, interval=0.3, what="the Center to show the process's ack")

    # The closing paragraph: edit version 2 in place and push; refused, app unchanged.
    shell.run(
        "sed -i 's/Bonjour/Salut/' work/greeter.yaml\n"
        "git -C work commit -qam 'greeter v2, edited in place'\n"
        "git -C work push -q origin HEAD:main"
    )
    wait_until(
        lambda: "rejected" in shell.run("konorctl commits"), timeout=30, interval=0.3,
        what="the in-place edit to be rejected",
    )  # fmt: skip
    assert "Salut" not in app_log.read_text()
    assert "web-3-" not in shell.run("konorctl releases")
    unknown = shell.run("konorctl nodes show web-9 2>&1 || echo exit=$?")
    assert "no node with id or name 'web-9'" in unknown and "exit=1" in unknown
