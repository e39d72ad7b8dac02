"""``packaging/container``: each Containerfile is checked without building it.

Building needs a container builder and the base image from a registry; neither
is assumed here (``.ci/run`` builds when a builder works). What can be judged
from the text is: every ``COPY`` source exists in the build context (the
repository root), the image runs as a named non-root user it creates, the
``ENTRYPOINT`` + ``CMD`` is a real console script with real subcommands and
options, the data directory is a ``VOLUME``, and the Center's ``HEALTHCHECK``
asks ``/healthz`` on the port it listens on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.packaging.commandline import problems

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "packaging" / "container").glob("Containerfile.*"))


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions(path: Path) -> list[Instruction]:
    """The file's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            found.append(Instruction(keyword.upper(), args.strip()))
    return found


def final_stage(path: Path) -> list[Instruction]:
    found = instructions(path)
    last = max(i for i, ins in enumerate(found) if ins.keyword == "FROM")
    return found[last:]


def exec_form(stage: list[Instruction], keyword: str) -> list[str]:
    (ins,) = [i for i in stage if i.keyword == keyword]
    value = json.loads(ins.args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), ins
    return value


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_there_is_one_for_each_daemon() -> None:
    assert [f.name for f in FILES] == ["Containerfile.agent", "Containerfile.center"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_copy_sources_exist_in_the_build_context(path: Path) -> None:
    copies = [i for i in instructions(path) if i.keyword == "COPY" and "--from" not in i.args]
    assert copies
    sources = [ROOT / src for ins in copies for src in ins.args.split()[:-1]]
    for source in sources:
        assert source.exists(), f"{path.name}: COPY {source.relative_to(ROOT)}: not in the repo"
    # COPY keeps symlinks as links: each must point into what is copied too.
    for source in (s for s in sources if s.is_dir()):
        for link in (p for p in source.rglob("*") if p.is_symlink()):
            target = link.resolve()
            assert any(target.is_relative_to(s.resolve()) for s in sources), (
                f"{path.name}: {link.relative_to(ROOT)} -> {target}: not copied"
            )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_runs_as_a_non_root_user_it_creates(path: Path) -> None:
    stage = final_stage(path)
    assert all(i.args.startswith("python:3.11-slim") for i in instructions(path)
               if i.keyword == "FROM")  # fmt: skip
    users = [i.args for i in stage if i.keyword == "USER"]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith(("root:", "0:"))
    created = " ".join(i.args for i in stage if i.keyword == "RUN")
    assert re.search(rf"useradd .*\b{re.escape(users[-1])}\b", created), users[-1]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_entrypoint_is_a_real_command_with_its_data_in_a_volume(path: Path) -> None:
    stage = final_stage(path)
    argv = exec_form(stage, "ENTRYPOINT") + exec_form(stage, "CMD")
    assert problems(argv[0], argv[1:]) == []
    volumes = {v for i in stage if i.keyword == "VOLUME" for v in json.loads(i.args)}
    assert option(argv, "--data") in volumes


def test_center_healthcheck_asks_healthz_where_it_listens() -> None:
    stage = final_stage(ROOT / "packaging" / "container" / "Containerfile.center")
    argv = exec_form(stage, "ENTRYPOINT") + exec_form(stage, "CMD")
    port = option(argv, "--listen").rsplit(":", 1)[1]
    (check,) = [i.args for i in stage if i.keyword == "HEALTHCHECK"]
    assert f"https://127.0.0.1:{port}/healthz" in check
    assert f"{option(argv, '--data')}/ca.pem" in check  # verified with the Center's own CA
    assert [i.args for i in stage if i.keyword == "EXPOSE"] == [port]


def test_agent_socket_is_in_a_shared_volume() -> None:
    stage = final_stage(ROOT / "packaging" / "container" / "Containerfile.agent")
    argv = exec_form(stage, "ENTRYPOINT") + exec_form(stage, "CMD")
    volumes = {v for i in stage if i.keyword == "VOLUME" for v in json.loads(i.args)}
    assert str(Path(option(argv, "--socket")).parent) in volumes
