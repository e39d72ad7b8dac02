"""Real Git repositories for tests, driven by the real ``git`` CLI.

Every git call gets a fixed identity and ignores the user's global and system
config, so tests behave the same on any machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def git_env(home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_AUTHOR_NAME="Ana Test",
        GIT_AUTHOR_EMAIL="ana@example.org",
        GIT_COMMITTER_NAME="Ana Test",
        GIT_COMMITTER_EMAIL="ana@example.org",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
    )
    if home is not None:
        env["HOME"] = str(home)
    return env


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git; raise with its stderr on failure; return stdout."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env or git_env(), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def make_bare(path: Path, branch: str = "main") -> Path:
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "--bare", f"--initial-branch={branch}")
    return path


class WorkRepo:
    """A clone of a bare repository that tests write, commit and push from."""

    def __init__(self, path: Path, remote: Path, branch: str = "main") -> None:
        self.path, self.remote, self.branch = path, remote, branch

    @classmethod
    def clone(cls, remote: Path, path: Path, branch: str = "main") -> WorkRepo:
        path.mkdir(parents=True)
        git(path, "init", "--quiet", f"--initial-branch={branch}")
        git(path, "remote", "add", "origin", str(remote))
        return cls(path, remote, branch)

    def write(self, rel: str, text: str | bytes) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)

    def remove(self, rel: str) -> None:
        (self.path / rel).unlink()

    def copy_tree(self, source: Path) -> None:
        shutil.copytree(source, self.path, dirs_exist_ok=True)

    def commit(self, message: str) -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "--quiet", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD").strip()

    def push(self) -> None:
        git(self.path, "push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}")
