"""The pre-commit and pre-receive hooks refuse bad commits in real Git repos."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]

POLICY = (
    "apiVersion: konorkestra.io/v1\nkind: Policy\n"
    "metadata: {name: fast}\nspec: {strategy: all-at-once}\n"
)


def precommit_command() -> str:
    """The command pre-commit runs for our hook: entry + args, no filenames."""
    [hook] = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "konorkestra-validate" and hook["pass_filenames"] is False
    return " ".join([hook["entry"], *map(shlex.quote, hook.get("args", []))])


def install_precommit(repo: Any) -> None:
    hook = repo.path / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\nexec {precommit_command()}\n")
    hook.chmod(0o755)


def test_precommit_hook_rejects_a_bad_commit(repo: Any, configset: Any) -> None:
    install_precommit(repo)
    repo.write("policy.yaml", POLICY)
    repo.write("web.yaml", configset("web", 1, "{port: 8080}"))
    repo.git("add", "-A")
    first = repo.git("commit", "-q", "-m", "add web", check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    # Changing web@1 without a version bump is refused, naming the earlier commit.
    repo.write("web.yaml", configset("web", 1, "{port: 9090}"))
    repo.git("add", "-A")
    refused = repo.git("commit", "-q", "-m", "sneaky change", check=False)
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr  # git shows hook output on stderr
    assert "web.yaml:3:" in output and "immutable-version" in output
    assert "add web" in output
    assert repo.git("log", "--format=%s").stdout.split("\n")[0] == "add web"
    # A schema error is refused too; the fix goes through.
    repo.write("web.yaml", configset("web", 2, "{port: 9090}", extra="  colour: blue\n"))
    repo.git("add", "-A")
    assert repo.git("commit", "-q", "-m", "typo", check=False).returncode != 0
    repo.write("web.yaml", configset("web", 1, "{port: 8080}") + "---\n" + configset("web", 2))
    repo.git("add", "-A")
    assert repo.git("commit", "-q", "-m", "web v2", check=False).returncode == 0


def test_prereceive_hook_refuses_a_bad_push(new_repo: Any, configset: Any) -> None:
    server = new_repo("server.git", bare=True)
    shutil.copy(ROOT / "hooks" / "pre-receive", server.path / "hooks" / "pre-receive")
    client = new_repo("client")
    client.git("remote", "add", "origin", str(server.path))
    client.write("policy.yaml", POLICY)
    client.write("web.yaml", configset("web", 1))
    client.commit("add web")
    pushed = client.git("push", "-q", "origin", "main", check=False)
    assert pushed.returncode == 0, pushed.stderr
    good = server.git("rev-parse", "main").stdout.strip()

    client.write("web.yaml", configset("web", 1, "{port: 1}"))
    client.commit("change web@1 in place")
    client.write(
        "group.yaml",
        "apiVersion: konorkestra.io/v1\nkind: Group\n"
        "metadata: {name: g}\nspec: {configSets: [web], policy: fast}\n",
    )
    client.commit("add group")
    refused = client.git("push", "-q", "origin", "main", check=False)
    assert refused.returncode != 0
    assert "immutable-version" in refused.stderr and "web.yaml:3:" in refused.stderr
    assert "refusing refs/heads/main" in refused.stderr
    assert server.git("rev-parse", "main").stdout.strip() == good

    # A new branch with a broken commit is refused as well; a fixed one is accepted.
    client.git("checkout", "-q", "-b", "feature", "main~2")
    client.write(
        "group.yaml",
        "apiVersion: konorkestra.io/v1\nkind: Group\n"
        "metadata: {name: g}\nspec: {configSets: [web], policy: slow}\n",
    )
    client.commit("group with a missing policy")
    refused = client.git("push", "-q", "origin", "feature", check=False)
    assert refused.returncode != 0 and "missing-policy" in refused.stderr
    client.write(
        "group.yaml",
        "apiVersion: konorkestra.io/v1\nkind: Group\n"
        "metadata: {name: g}\nspec: {configSets: [web], policy: fast}\n",
    )
    client.git("add", "-A")
    client.git("commit", "-q", "--amend", "--no-edit")
    accepted = client.git("push", "-q", "origin", "feature", check=False)
    assert accepted.returncode == 0, accepted.stderr


def test_prereceive_hook_refuses_an_unannounced_group_deletion(
    new_repo: Any, configset: Any
) -> None:
    server = new_repo("server.git", bare=True)
    shutil.copy(ROOT / "hooks" / "pre-receive", server.path / "hooks" / "pre-receive")
    client = new_repo("client")
    client.git("remote", "add", "origin", str(server.path))
    client.write("policy.yaml", POLICY)
    client.write("web.yaml", configset("web", 1))
    for name in ("web", "db"):
        client.write(
            f"{name}-group.yaml",
            "apiVersion: konorkestra.io/v1\nkind: Group\n"
            f"metadata: {{name: {name}}}\nspec: {{configSets: [web], policy: fast}}\n",
        )
    client.commit("two groups")
    assert client.git("push", "-q", "origin", "main", check=False).returncode == 0
    good = server.git("rev-parse", "main").stdout.strip()

    (client.path / "web-group.yaml").unlink()
    client.commit("drop web")
    refused = client.git("push", "-q", "origin", "main", check=False)
    assert refused.returncode != 0 and "group-deleted" in refused.stderr
    assert "Konorkestra-Allow-Delete: web" in refused.stderr
    assert server.git("rev-parse", "main").stdout.strip() == good
    # The same change, announced by the commit's trailer, goes through.
    client.git("commit", "-q", "--amend", "-m", "drop web\n\nKonorkestra-Allow-Delete: web")
    accepted = client.git("push", "-q", "origin", "main", check=False)
    assert accepted.returncode == 0, accepted.stderr
