"""A config repo for the demo: a bare repository plus a work clone, driven by the real ``git``.

Example::

    repo = ConfigRepo.create(tmp, seed=example_repo())   # bare + clone, seed committed, pushed
    repo.write("configsets/checkout-api.yaml", text, append=True)
    sha = repo.commit("checkout-api v3: timeout 650 ms")
    pushed_at = repo.push()                              # time.monotonic() just before `git push`

Invariant: git runs with a fixed identity and without the user's global or
system config (``GIT_CONFIG_GLOBAL=/dev/null``), so the demo behaves the same
on any machine and never depends on ``git config --global user.name``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from konorkestra.demo.procs import DemoError

IDENTITY = {"name": "Demo Operator", "email": "demo@konorkestra.invalid"}


def git_env() -> dict[str, str]:
    """The environment every git call of the demo uses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_AUTHOR_NAME=IDENTITY["name"],
        GIT_AUTHOR_EMAIL=IDENTITY["email"],
        GIT_COMMITTER_NAME=IDENTITY["name"],
        GIT_COMMITTER_EMAIL=IDENTITY["email"],
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
    )
    return env


def git(cwd: Path, *args: str) -> str:
    """Run ``git args`` in ``cwd``; :class:`DemoError` with git's message on failure."""
    if shutil.which("git") is None:
        raise DemoError("git is not installed (the demo drives the real git CLI)")
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=git_env(), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise DemoError(f"git {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


@dataclass
class ConfigRepo:
    """``bare`` is what the Center watches; ``work`` is where changes are made."""

    bare: Path
    work: Path
    branch: str = "main"

    @classmethod
    def create(cls, root: Path, *, seed: Path | None = None, branch: str = "main") -> ConfigRepo:
        """``root/config.git`` and its clone ``root/work``; ``seed``'s files committed."""
        bare, work = root / "config.git", root / "work"
        bare.mkdir(parents=True)
        git(bare, "init", "--quiet", "--bare", f"--initial-branch={branch}")
        work.mkdir(parents=True)
        git(work, "init", "--quiet", f"--initial-branch={branch}")
        git(work, "remote", "add", "origin", str(bare))
        repo = cls(bare, work, branch)
        if seed is not None:
            shutil.copytree(seed, work, dirs_exist_ok=True)
            repo.commit("Initial config from examples/config-repo")
        return repo

    def write(self, rel: str, text: str, *, append: bool = False) -> None:
        target = self.work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if append:
            old = target.read_text() if target.exists() else ""
            sep = "" if not old or old.endswith("\n") else "\n"
            target.write_text(old + sep + text)
        else:
            target.write_text(text)

    def commit(self, message: str) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "--quiet", "-m", message)
        return self.head()

    def head(self) -> str:
        return git(self.work, "rev-parse", "HEAD").strip()

    def push(self) -> float:
        """Push to the bare repo; returns ``time.monotonic()`` taken just before the push."""
        started = time.monotonic()
        git(self.work, "push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}")
        return started

    def diff_stat(self, rev: str = "HEAD") -> str:
        return git(self.work, "show", "--stat", "--format=%h %s", rev).strip()
