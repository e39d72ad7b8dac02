"""The Center as a real process: push with git, watch Releases appear, verify them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from konorkestra.model.canonical import digest_of
from tests.helpers.center_proc import CenterProcess, install_post_receive, konorctl
from tests.helpers.configrepo import BROKEN_GROUP, payments_common, seeded
from tests.helpers.poll import wait_for

pytestmark = pytest.mark.slow
Factory = Callable[..., CenterProcess]


def sequences(center: CenterProcess) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r in center.get("/v1/releases", params={"limit": 1000})["releases"]:
        out.setdefault(r["group"], []).append(r["sequence"])
    return {g: sorted(s) for g, s in out.items()}


def verify_all(center: CenterProcess, tmp: Path) -> int:
    """Download every Release and its blobs; ``konorctl verify`` each one."""
    root = tmp / "root.json"
    root.write_bytes(center.request("GET", "/v1/trust/root").content)
    blobs = tmp / "blobs"
    blobs.mkdir(exist_ok=True)
    releases = center.get("/v1/releases", params={"limit": 1000})["releases"]
    for rel in releases:
        bundle = tmp / f"{rel['id']}.json"
        bundle.write_bytes(center.request("GET", f"/v1/releases/{rel['id']}/bundle").content)
        for cs in rel["configsets"]:
            data = center.request("GET", f"/v1/blobs/{cs['digest']}").content
            assert digest_of(data) == cs["digest"]
            (blobs / cs["digest"]).write_bytes(data)
        out = konorctl(
            center,
            "verify",
            str(bundle),
            "--trust-root",
            str(root),
            "--blobs",
            str(blobs),
            "-o",
            "json",
        )
        report = json.loads(out.stdout)
        assert report["ok"] is True and report["release"] == rel["id"]
        assert (report["group"], report["sequence"]) == (rel["group"], rel["sequence"])
        assert report["statementDigest"] == rel["digest"]
        assert all(c["blob"] == "blob ok" for c in report["configSets"]), report
    return len(releases)


def test_push_release_change_release_again_and_verify(
    center_factory: Factory, tmp_path: Path
) -> None:
    bare, work = seeded(tmp_path, push=False)
    center = center_factory(bare)
    work.push()
    first = center.wait_commit(work.head())
    assert first["status"] == "accepted"
    assert {r["group"]: r["sequence"] for r in first["releases"]} == {
        "checkout": 1,
        "payments": 1,
        "payments-eu": 1,
    }

    work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
    sha = work.commit("payments-common v2")
    work.push()
    second = center.wait_commit(sha)
    assert second["status"] == "accepted"
    assert {r["group"]: r["sequence"] for r in second["releases"]} == {
        "payments": 2,
        "payments-eu": 2,
    }
    assert sequences(center) == {"checkout": [1], "payments": [1, 2], "payments-eu": [1, 2]}
    assert verify_all(center, tmp_path) == 5


def test_a_center_on_postgresql_releases_pushes_and_keeps_them_across_a_restart(
    center_factory: Factory, tmp_path: Path, postgres_url: str
) -> None:
    bare, work = seeded(tmp_path, push=False)
    db = postgres_url.replace("postgresql+psycopg://", "postgresql://")  # as an operator types it
    center = center_factory(bare, "--db", db)
    work.push()
    assert center.wait_commit(work.head())["status"] == "accepted"
    work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
    sha = work.commit("payments-common v2")
    work.push()
    assert center.wait_commit(sha)["status"] == "accepted"
    assert sequences(center) == {"checkout": [1], "payments": [1, 2], "payments-eu": [1, 2]}
    assert verify_all(center, tmp_path) == 5
    assert not (center.data / "center.db").exists()  # everything went to PostgreSQL

    center.stop()
    center.start()
    assert "First start" not in center.output().split("--- start 2 ---")[1]
    assert sequences(center) == {"checkout": [1], "payments": [1, 2], "payments-eu": [1, 2]}
    konorctl(center, "audit", "--verify")


def test_an_invalid_push_is_rejected_and_the_last_good_state_stays(
    center_factory: Factory, tmp_path: Path
) -> None:
    bare, work = seeded(tmp_path)
    center = center_factory(bare)
    center.wait_commit(work.head())
    served = center.get("/v1/releases")["releases"]
    work.write("groups/broken.yaml", BROKEN_GROUP)
    sha = work.commit("add a group with a typo in its policy")
    work.push()
    assert center.wait_commit(sha)["status"] == "rejected"

    listing = konorctl(center, "commits").stdout
    assert sha[:12] in listing and "rejected" in listing
    shown = konorctl(center, "commits", "show", sha).stdout
    assert "groups/broken.yaml:" in shown and "missing-policy" in shown and "hint:" in shown
    as_json = json.loads(konorctl(center, "commits", "show", sha, "-o", "json").stdout)
    assert any(d["code"] == "missing-policy" for d in as_json["diagnostics"])

    assert center.get("/v1/releases")["releases"] == served
    for rel in served:
        assert center.request("GET", f"/v1/releases/{rel['id']}/bundle").status_code == 200
    assert verify_all(center, tmp_path) == len(served)


def test_restart_loses_nothing_and_catches_up_in_order(
    center_factory: Factory, tmp_path: Path
) -> None:
    bare, work = seeded(tmp_path)
    center = center_factory(bare)
    center.wait_commit(work.head())
    before = center.get("/v1/releases")["releases"]
    center.stop()

    work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
    a = work.commit("v2 while the Center is down")
    work.write("configsets/payments-common.yaml", payments_common(3, "CHF"))
    b = work.commit("v3 while the Center is down")
    work.push()  # two commits in one push

    center.start()
    assert center.wait_commit(b)["status"] == "accepted"
    commits = center.get("/v1/commits")["commits"]
    assert [c["sha"] for c in commits][:3] == [b, a, before[0]["commit"]]
    assert [c["seq"] for c in commits] == sorted((c["seq"] for c in commits), reverse=True)
    assert sequences(center) == {"checkout": [1], "payments": [1, 2, 3], "payments-eu": [1, 2, 3]}
    after = {r["id"] for r in center.get("/v1/releases")["releases"]}
    assert {r["id"] for r in before} <= after
    assert "First start" not in center.output().split("--- start 2 ---")[1]
    konorctl(center, "audit", "--verify")


def test_the_post_receive_hook_triggers_ingest_without_a_watcher(
    center_factory: Factory, tmp_path: Path
) -> None:
    bare, work = seeded(tmp_path, push=False)
    center = center_factory(bare, "--no-watch", "--poll", "3600")
    install_post_receive(bare, center)
    work.push()
    commit = center.wait_commit(work.head(), timeout=10)
    assert commit["status"] == "accepted" and len(commit["releases"]) == 3


def test_operator_rollback_and_audit_through_the_cli(
    center_factory: Factory, tmp_path: Path
) -> None:
    bare, work = seeded(tmp_path)
    center = center_factory(bare)
    center.wait_commit(work.head())
    work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
    work.push() if work.commit("v2") else None
    center.wait_commit(work.head())

    made = konorctl(
        center,
        "release",
        "--group",
        "payments",
        "--to",
        "payments-common@1",
        "--strategy",
        "all-at-once",
        "--reason",
        "USD broke",
        "-o",
        "json",
    )
    rel = json.loads(made.stdout)
    assert rel["sequence"] == 3 and rel["configsets"][0]["version"] == 1
    listed = konorctl(center, "releases", "--group", "payments").stdout
    assert rel["id"] in listed

    # The audit log: the operator's Release, then its rollout, which the Center runs
    # right after (all at once, as asked; with no node enrolled it completes at once).
    def rolled_out() -> list[dict[str, Any]] | None:
        events = json.loads(konorctl(center, "audit", "--reverse", "-o", "json").stdout)
        mine = [e for e in events if e["details"].get("release") == rel["id"]]
        return mine if mine and mine[-1]["action"] == "rollout.completed" else None

    events = wait_for(rolled_out, timeout=30, what=f"the rollout of {rel['id']} to complete")
    assert (
        events[0]["action"] == "release.created" and events[0]["details"]["reason"] == "USD broke"
    )
    assert events[1]["action"] == "rollout.started"
    rollout = center.get("/v1/rollouts/payments")
    assert rollout["release"]["id"] == rel["id"] and rollout["phase"] == "completed"
    assert rollout["policy"]["strategy"] == "all-at-once" and rollout["steps"] == 1
    assert "audit chain verified" in konorctl(center, "audit", "--verify").stdout

    viewer = center.request("POST", "/v1/tokens", json={"name": "ro", "role": "viewer"}).json()
    denied = konorctl(
        center,
        "release",
        "--group",
        "payments",
        "--to",
        "payments-common@2",
        token=viewer["token"],
        check=False,
    )
    assert denied.returncode == 1 and "forbidden" in denied.stderr
    assert len(denied.stderr.strip().splitlines()) == 1 and "Traceback" not in denied.stderr


def test_konorctl_explains_an_unreachable_center(tmp_path: Path) -> None:
    fake = CenterProcess(repo=tmp_path, data=tmp_path / "none")
    fake.url = "http://127.0.0.1:9"
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "admin.token").write_text("kt_000000000000.x\n")
    proc = konorctl(fake, "commits", check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "http://127.0.0.1:9" in lines[0] and "connection refused" in lines[0]
    assert "konorkestra center" in lines[0]


def test_wait_for_helper_never_sleeps_a_fixed_time() -> None:
    calls = iter([None, None, "done"])
    assert wait_for(lambda: next(calls), timeout=5) == "done"


def test_back_to_back_pushes_are_processed_in_push_order(
    center_factory: Factory, tmp_path: Path
) -> None:
    bare, work = seeded(tmp_path)
    center = center_factory(bare)
    center.wait_commit(work.head())
    pushed = []
    for version, currency in ((2, "USD"), (3, "CHF"), (4, "SEK")):
        work.write("configsets/payments-common.yaml", payments_common(version, currency))
        pushed.append(work.commit(f"v{version}"))
        work.push()  # no waiting between pushes
    center.wait_commit(pushed[-1])
    commits = center.get("/v1/commits")["commits"]
    assert [c["sha"] for c in commits[:3]] == pushed[::-1]
    payments = center.get("/v1/releases", params={"group": "payments"})["releases"]
    assert [(r["sequence"], r["configsets"][0]["version"]) for r in payments] == [
        (4, 4),
        (3, 3),
        (2, 2),
        (1, 1),
    ]
