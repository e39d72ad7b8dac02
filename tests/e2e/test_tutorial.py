"""README's tutorial, run as written: every ```sh block of "## Tutorial", in order,
in one bash session in an empty directory, with real processes and ``git``.

Only the Center's port is changed (7400 → a free one). Between blocks the test
waits, with deadlines, for what the prose promises: the app's first line, its
reaction to the push, the Center's view of the process and its ack; then it does
step 5's closing paragraph's invalid edit and checks the app kept its config.
Step 6 (a canary with manual approval): the rollout waits for approval with only
the ``ring=canary`` node on version 3 while ``web-1`` and its app stay on
version 2; after the approve the app reloads and the rollout completes with the
approval on record. Last, the tutorial's ``kill %1 %2 %3 %4`` stops every
process it started.
"""

from __future__ import annotations

import contextlib
import json
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
from typing import Any

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
        # pytest shows these on failure
        for log in ("center.log", "agent.log", "app.log", "agent2.log"):
            path = tmp_path / log
            print(f"--- {log}:\n{path.read_text()[-4000:] if path.exists() else '(none)'}")
        raise


def follow_the_tutorial(shell: Shell, tmp_path: Path) -> None:
    blocks = tutorial_blocks()
    assert len(blocks) == 8, "the tutorial's steps changed; update this test's waits"
    port = str(free_port())
    repo, center, node, app, change, show, canary, approve = (
        b.replace("7400", port) for b in blocks
    )
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

    follow_the_canary(shell, app_log, canary, approve)
    stop_everything(shell)


def as_json(shell: Shell, command: str) -> Any:
    """``command``'s output (an ``-o json`` one) parsed."""
    return json.loads(shell.run(command))


def rollout_of_v3(shell: Shell, phase: str) -> dict[str, Any] | None:
    """web's rollout once it rolls out version 3 (sequence 3) and is in ``phase``."""
    status: dict[str, Any] = as_json(shell, "konorctl rollout status web -o json")
    if status["release"]["sequence"] != 3:
        return None
    assert status["phase"] not in ("rolled_back", "aborted"), status
    return status if status["phase"] == phase else None


def follow_the_canary(shell: Shell, app_log: Path, canary: str, approve: str) -> None:
    """Step 6: canary first, bake, wait for approval; approve; every node, app reloads."""
    reloads = app_log.read_text().count("changed:")
    shell.run(canary)
    waiting = wait_until(
        lambda: rollout_of_v3(shell, "awaiting_approval"), timeout=60, interval=1.0,
        what="the canary wave to bake and the rollout to await approval",
    )  # fmt: skip
    new = waiting["release"]["id"]
    first, second = waiting["waves"]
    assert waiting["nodes"] == {"enrolled": 2, "targeted": 1, "stable": 1}
    assert (first["selector"], first["bake_seconds"]) == ({"ring": "canary"}, 10)
    assert (first["state"], first["nodes"], first["committed"]) == ("current", 1, 1)
    assert (second["state"], second["committed"]) == ("pending", 0)
    assert [g["status"] for g in waiting["guards"]] == ["pass"] and waiting["approvals"] == []
    # The one targeted node is the ring=canary one: canary-1 holds v3, web-1 still v2 ...
    assert as_json(shell, "konorctl nodes show canary-1 -o json")["labels"] == {"ring": "canary"}
    canary_agent = as_json(shell, "konorkestra agent status --data $PWD/agent2 -o json")
    assert canary_agent["groups"]["web"]["release"] == new
    web1 = as_json(shell, "konorkestra agent status --data $PWD/agent -o json")
    assert web1["groups"]["web"]["release"].startswith("web-2-") and web1["stale"] is False
    # ... and web-1's app, ten seconds of bake later, has not seen v3.
    assert app_log.read_text().count("changed:") == reloads and "web-3-" not in app_log.read_text()

    out = shell.run(approve)
    assert "awaiting approval for step 2/2" in out and "approved the rollout of web" in out
    wait_until(
        lambda: f"changed: Hej in {new}" in app_log.read_text(), timeout=30,
        what="web-1's app to reload version 3 after the approval",
    )  # fmt: skip
    done = wait_until(
        lambda: rollout_of_v3(shell, "completed"), timeout=30, interval=0.5,
        what="the rollout to complete",
    )  # fmt: skip
    assert done["nodes"] == {"enrolled": 2, "targeted": 2, "stable": 0}
    [approval] = done["approvals"]
    assert approval["reason"] == "canary looks fine" and approval["step"] == 1
    assert approval["actor"].startswith("token:admin"), approval  # the admin token of step 2


def stop_everything(shell: Shell) -> None:
    """The tutorial's last sentence: ``kill %1 %2 %3 %4`` stops every process it started."""
    assert len(shell.run("jobs -p").split()) == 4  # center, web-1's agent, the app, canary-1's
    shell.run("kill %1 %2 %3 %4\nwait")

    def left() -> list[int]:
        """Processes of the shell's process group (its background jobs'), but the shell."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != shell.proc.pid:
                with contextlib.suppress(OSError):
                    if os.getpgid(int(entry.name)) == shell.proc.pid:
                        pids.append(int(entry.name))
        return pids

    wait_until(lambda: not left(), timeout=15, interval=0.2, what="every process to stop")
