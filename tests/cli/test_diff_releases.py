"""``konorctl diff`` between two Releases (rules RD1-RD6 of ``konorkestra.cli.diff_releases``).

The slow tests run the real ``konorctl`` against a real Center serving the
example config repo: its first commit makes Release 1 of each Group; a pushed
commit with ``checkout-api`` v3 and a faster ``canary`` Policy makes
``checkout`` Release 2. The others need no Center (pure diff, usage, no Center).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from konorkestra.cli.diff_releases import ReleaseDiffError, parse_configset_blob
from konorkestra.cli.konorctl import cli
from konorkestra.demo import CenterHandle, ConfigRepo, Stack, edits, examples_dir
from konorkestra.demo.procs import wait_until
from konorkestra.model.definitions import ConfigSet
from konorkestra.model.release import ConfigSetRef, PolicyRef, Release
from konorkestra.model.types import (
    ConfigSetName,
    Digest,
    GroupName,
    PolicyName,
    ReleaseId,
    Sequence,
)
from konorkestra.repo.releasediff import POLICY_NOTE, diff_releases

FAST_CANARY = edits.canary_policy(((50, "1s"), (100, None)), guards=())
ZEROS = "0" * 16
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
POLICY = PolicyRef(PolicyName("canary"), Digest("sha256:" + "cd" * 32), "canary")


# -- pure: diff_releases and the blob parser ------------------------------------------


def release(
    group: str, seq: int, tag: str, *sets: ConfigSet, policy: PolicyRef = POLICY
) -> Release:
    refs = tuple(ConfigSetRef(cs.name, cs.version, cs.digest(), len(cs.blob())) for cs in sets)
    return Release(
        group=GroupName(group),
        sequence=Sequence(seq),
        digest=Digest("sha256:" + tag * 64),
        configsets=tuple(sorted(refs, key=lambda r: r.name)),
        policy=policy,
        created_at=T0,
        expires_at=T0 + dt.timedelta(days=90),
        previous_id=None if seq == 1 else ReleaseId(f"{group}-{seq - 1}-{'0' * 16}"),
        commit="0" * 40,
    )


def cs(name: str, version: int, **data: Any) -> ConfigSet:
    return ConfigSet(ConfigSetName(name), version, data)


def contents(*sets: ConfigSet) -> dict[Digest, ConfigSet]:
    return {c.digest(): c for c in sets}


def test_RD3_configsets_in_name_order_with_versions_and_data() -> None:
    api1, api2, web, db = cs("api", 1, t=250), cs("api", 2, t=400), cs("web", 1), cs("db", 1)
    diff = diff_releases(
        release("g", 1, "a", api1, web),
        release("g", 2, "b", api2, db),
        contents(api1, api2, web, db),
    )
    assert [(c.name, c.op) for c in diff.configsets] == [
        ("api", "change"),
        ("db", "add"),
        ("web", "remove"),
    ]
    assert [c.line() for c in diff.configsets[0].data] == ["~ /t: 250 → 400"]
    assert diff.changed and diff.counts() == {
        "added": 1,
        "removed": 1,
        "changed": 1,
        "unchanged": 0,
    }


def test_RD4_policy_by_name_digest_and_strategy() -> None:
    api = cs("api", 1, t=1)
    other = PolicyRef(PolicyName("fast"), Digest("sha256:" + "ef" * 32), "all-at-once")
    diff = diff_releases(
        release("g", 1, "a", api), release("g", 2, "b", api, policy=other), contents(api)
    )
    assert [f.field for f in diff.policy] == ["name", "digest", "strategy"]
    assert diff.changed
    assert diff.to_json()["policy"]["compared"] == ["name", "digest", "strategy"]


def test_RD5_ids_sequences_and_groups_are_not_differences() -> None:
    api = cs("api", 1, t=1)
    diff = diff_releases(release("g", 1, "a", api), release("h", 7, "b", api), contents(api))
    assert not diff.changed
    assert not diff.same_group
    assert diff.to_json()["groups"] == {"before": "g", "after": "h"}


def test_RD2_a_blob_must_be_the_configset_the_release_names() -> None:
    api, other = cs("api", 1, t=1), cs("api", 1, t=2)
    ref = ConfigSetRef(api.name, api.version, api.digest())
    assert parse_configset_blob(ref, api.blob()) == api
    with pytest.raises(ReleaseDiffError, match="api@1"):
        parse_configset_blob(ref, other.blob())
    pretty = json.dumps(json.loads(api.blob()), indent=1).encode()  # same JSON, other bytes
    with pytest.raises(ReleaseDiffError, match="api@1"):
        parse_configset_blob(ref, pretty)


# -- usage and an absent Center (no Center process) -----------------------------------


@pytest.fixture
def no_konorctl_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KONORCTL_CENTER", "KONORCTL_TOKEN", "KONORCTL_CA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KONORCTL_CONFIG", str(tmp_path / "absent.yaml"))


@pytest.mark.usefixtures("no_konorctl_config")
@pytest.mark.parametrize("other", ["HEAD", "main~1", "WORKTREE", "checkout-api@2"])
def test_mixing_a_release_with_anything_else_is_a_usage_error(other: str) -> None:
    for a, b in (("checkout-1-0123456789abcdef", other), (other, "checkout-1-0123456789abcdef")):
        result = CliRunner().invoke(cli, ["diff", a, b])
        assert result.exit_code == 2, result.output
        assert "not a Release" in result.stderr or "with a Release" in result.stderr
        assert result.stdout == ""


@pytest.mark.usefixtures("no_konorctl_config")
def test_RD6_an_unreachable_center_is_exit_2_with_one_line() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    a, b = "checkout-1-0123456789abcdef", "checkout-2-0123456789abcdef"
    result = CliRunner().invoke(cli, ["diff", a, b, "--center", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot connect to the Center" in lines[0], result.stderr
    assert "Traceback" not in result.output


# -- a real Center ---------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    center: CenterHandle
    first: str  # checkout Release 1
    second: str  # checkout Release 2
    payments: str  # payments Release 1
    commits: tuple[str, str]


def latest(center: CenterHandle, group: str, sequence: int) -> str:
    def made() -> str | None:
        items = center.get("/v1/releases", group=group, limit=1)["releases"]
        return items[0]["id"] if items and items[0]["sequence"] == sequence else None

    what = f"{group} Release {sequence}"
    return wait_until(made, timeout=30, what=what, watch=[center.proc])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("diff-releases")
    repo = ConfigRepo.create(root)
    shutil.copytree(examples_dir() / "config-repo", repo.work, dirs_exist_ok=True)
    one = repo.commit("the example config repo")
    repo.push()
    with Stack(root) as stack:
        center = stack.center(repo.bare)
        center.wait_commit(one)
        first, payments = latest(center, "checkout", 1), latest(center, "payments", 1)
        repo.write(edits.API_FILE, edits.checkout_api(3, timeout_ms=650), append=True)
        repo.write(edits.POLICY_FILE, FAST_CANARY)
        two = repo.commit("checkout-api v3 and a fast canary")
        repo.push()
        center.wait_commit(two)
        second = latest(center, "checkout", 2)
        yield Served(center, first, second, payments, (one, two))


def konorctl(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return served.center.konorctl("diff", *args, check=False, columns=200)


@pytest.mark.slow
def test_two_releases_of_a_group_as_text(served: Served) -> None:
    shown = konorctl(served, served.first, served.second)
    assert shown.returncode == 1, shown.stderr
    out = shown.stdout
    one, two = served.commits
    assert f"diff {served.first} (commit {one[:12]}) → {served.second} (commit {two[:12]})" in out
    for line in (
        "~ Release checkout 1 → 2",
        "  ~ ConfigSet checkout-api 2 → 3",
        "      ~ /timeout_ms: 400 → 650",
        "  = ConfigSet checkout-flags 3",
        "  ~ Policy canary",
        "1 ConfigSet changed, 0 added, 0 removed, 1 unchanged; Policy changed",
    ):
        assert line in out.splitlines(), (line, out)
    assert "~ digest: sha256:" in out
    assert "strategy" not in out.split("~ Policy canary")[1].split("(")[0]  # canary both times
    assert POLICY_NOTE in " ".join(out.split())


@pytest.mark.slow
def test_two_releases_of_a_group_as_json(served: Served) -> None:
    shown = konorctl(served, served.first, served.second, "-o", "json")
    assert shown.returncode == 1, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["format"] == 1 and doc["differs"] is True
    assert (doc["a"]["ref"], doc["a"]["commit"], doc["a"]["sequence"]) == (
        served.first,
        served.commits[0],
        1,
    )
    assert (doc["b"]["ref"], doc["b"]["commit"]) == (served.second, served.commits[1])
    body = doc["release"]
    assert body["same_group"] is True
    api, flags = body["configsets"]
    assert (api["name"], api["op"], api["before"]["version"], api["after"]["version"]) == (
        "checkout-api",
        "change",
        2,
        3,
    )
    assert {"op": "change", "path": "/timeout_ms", "old": "400", "new": "650"} in api["data"]
    assert (flags["name"], flags["op"], flags["data"]) == ("checkout-flags", "same", [])
    policy = body["policy"]
    assert [c["field"] for c in policy["changes"]] == ["digest"]
    assert policy["before"]["digest"] != policy["after"]["digest"]
    assert policy["after"]["strategy"] == "canary"
    assert body["summary"] == {
        "configsets": {"added": 0, "removed": 0, "changed": 1, "unchanged": 1},
        "policy_changed": True,
    }


@pytest.mark.slow
def test_the_same_release_twice_is_no_difference(served: Served) -> None:
    shown = konorctl(served, served.second, served.second)
    assert shown.returncode == 0, shown.stderr
    assert "no difference: 2 ConfigSets unchanged, Policy unchanged" in shown.stdout
    doc = json.loads(konorctl(served, served.second, served.second, "-o", "json").stdout)
    assert doc["differs"] is False and doc["release"]["policy"]["changes"] == []


@pytest.mark.slow
def test_releases_of_two_groups_are_compared_and_noted(served: Served) -> None:
    shown = konorctl(served, served.first, served.payments)
    assert shown.returncode == 1, shown.stderr
    assert "~ Release checkout 1 → payments 1" in shown.stdout
    assert "(two Groups compared: checkout and payments)" in shown.stdout
    assert "+ ConfigSet payments-common 1" in shown.stdout
    assert "- ConfigSet checkout-api 2" in shown.stdout


@pytest.mark.slow
def test_RD6_an_unknown_release_is_exit_2_naming_it(served: Served) -> None:
    unknown = "checkout-9-0123456789abcdef"
    shown = konorctl(served, served.first, unknown)
    assert shown.returncode == 2
    assert shown.stdout == ""
    assert shown.stderr.strip() == (
        f"konorctl diff: error: {unknown}: no such Release at the Center {served.center.url}"
    )


@pytest.mark.slow
def test_RD6_a_refused_token_is_exit_2(served: Served) -> None:
    shown = konorctl(served, served.first, served.second, "--token", "not-a-token")
    assert shown.returncode == 2
    assert len(shown.stderr.strip().splitlines()) == 1 and "HTTP 401" in shown.stderr


@pytest.mark.slow
def test_mixing_a_release_with_a_revision_against_a_center(served: Served) -> None:
    shown = konorctl(served, served.first, served.commits[1])
    assert shown.returncode == 2
    assert "not a Release" in shown.stderr and shown.stdout == ""
