"""``konorctl token create --count N`` against a real Center: N single-use tokens at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from konorkestra.cli.konorctl import cli
from konorkestra.demo import CenterHandle, ConfigRepo, Stack, examples_dir


@pytest.fixture
def center(tmp_path: Path) -> Iterator[CenterHandle]:
    repo = ConfigRepo.create(tmp_path, seed=examples_dir() / "config-repo")
    repo.push()
    with Stack(tmp_path) as stack:
        yield stack.center(repo.bare)


def konorctl(center: CenterHandle, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=center.konorctl_env())
    return result.exit_code, result.output


def test_count_prints_one_join_command_per_token(center: CenterHandle) -> None:
    code, out = konorctl(
        center, "token", "create", "--groups", "checkout", "--count", "3", "--print-join-command"
    )
    assert code == 0, out
    lines = out.strip().splitlines()
    assert len(lines) == 3 and all(
        line.startswith("konorkestra agent join --center ") for line in lines
    )
    assert len({line.split("--token ")[1].split()[0] for line in lines}) == 3
    listed = center.get("/v1/join-tokens")["tokens"]
    assert len(listed) == 3 and all(t["groups"] == ["checkout"] for t in listed)


def test_count_as_json_and_as_a_summary(center: CenterHandle) -> None:
    code, out = konorctl(center, "token", "create", "--groups", "web", "--count", "2", "-o", "json")
    assert code == 0, out
    reply = json.loads(out)
    assert reply["count"] == 2 and len(reply["tokens"]) == 2
    assert all(t["join_command"].endswith(t["ca_pin"]) for t in reply["tokens"])
    code, out = konorctl(center, "token", "create", "--groups", "web", "--count", "2")
    assert code == 0 and out.startswith("2 tokens, each single use"), out
    assert out.count("konorkestra agent join") == 2


def test_count_refuses_a_node_name_and_a_bad_number(center: CenterHandle) -> None:
    for args in (("--count", "2", "--node", "web-1"), ("--count", "0"), ("--count", "10001")):
        code, out = konorctl(center, "token", "create", "--groups", "web", *args)
        assert code == 2, (args, out)
    assert center.get("/v1/join-tokens")["tokens"] == []
