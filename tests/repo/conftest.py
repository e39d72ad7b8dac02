"""Real Git repositories for tests, independent of the user's git config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.invalid",
        GIT_COMMITTER_NAME="Test Committer",
        GIT_COMMITTER_EMAIL="committer@example.invalid",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


class GitRepo:
    """A work tree driven through the real ``git`` CLI."""

    def __init__(self, path: Path, env: dict[str, str], *, bare: bool = False) -> None:
        self.path, self.env = path, env
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main", *(["--bare"] if bare else []))

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
        )

    def write(self, rel: str, text: str) -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def copy_tree(self, source: Path) -> None:
        shutil.copytree(source, self.path, dirs_exist_ok=True)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--no-verify", "-m", message)
        return self.git("rev-parse", "HEAD").stdout.strip()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return git_env(home)


@pytest.fixture
def repo(tmp_path: Path, env: dict[str, str]) -> GitRepo:
    return GitRepo(tmp_path / "config", env)


@pytest.fixture
def new_repo(tmp_path: Path, env: dict[str, str]) -> Callable[..., GitRepo]:
    """Factory for more repositories (``bare=True`` for a server)."""

    def make(name: str, *, bare: bool = False) -> GitRepo:
        return GitRepo(tmp_path / name, env, bare=bare)

    return make


def configset_yaml(name: str, version: int, data: str = "{port: 8080}", extra: str = "") -> str:
    return (
        f"apiVersion: konorkestra.io/v1\nkind: ConfigSet\n"
        f"metadata: {{name: {name}, version: {version}}}\nspec:\n  data: {data}\n{extra}"
    )


@pytest.fixture
def configset() -> Callable[..., str]:
    """``configset(name, version, data="{...}", extra="  files: [...]\n")`` as YAML text."""
    return configset_yaml
