"""Releases get per-group sequences 1, 2, 3... even when two are created at once."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from konorkestra.center.app.datadir import Opened
from konorkestra.center.releases.signer import ReleasePlan, Releaser
from konorkestra.center.store import schema
from konorkestra.center.store.audit import verify_chain
from konorkestra.center.store.engine import now
from konorkestra.model.release import ConfigSetRef, PolicyRef
from konorkestra.model.types import ConfigSetName, Digest, GroupName, PolicyName
from tests.helpers.concurrent import at_once

pytestmark = pytest.mark.postgresql

SHA = "c" * 40
POLICY = PolicyRef(PolicyName("p"), Digest("sha256:" + "b" * 64), "all")
POLICY_BODY = {"spec": {"strategy": "all"}}


def plan(group: str, version: int) -> ReleasePlan:
    member = ConfigSetRef(ConfigSetName("payments-common"), version,
                          Digest("sha256:" + f"{version:064x}"), 10)  # fmt: skip
    return ReleasePlan(group=GroupName(group), members=(member,), policy=POLICY,
                       policy_body=POLICY_BODY, source_commit=SHA,
                       author="Ana <ana@example.org>", committed_at=now(), created_by="alice",
                       origin="manual")  # fmt: skip


def create_at_once(opened: Opened, plans: list[ReleasePlan]) -> list[object]:
    """Insert each plan from its own thread and transaction, all released together."""
    releaser = Releaser([opened.signers["release"]], source_repo="test-repo")

    def create(p: ReleasePlan) -> int:
        with opened.engine.begin() as conn:
            return releaser.insert(conn, p).sequence

    return at_once(create, [(p,) for p in plans])


@pytest.fixture
def with_commit(opened: Opened) -> Opened:
    with opened.engine.begin() as conn:
        conn.execute(sa.insert(schema.commits).values(
            sha=SHA, parent=None, branch="main", author="Ana", subject="s", status="accepted",
            diagnostics=[], committed_at=now(), ingested_at=now() + dt.timedelta(seconds=1),
        ))  # fmt: skip
    return opened


def test_concurrent_releases_of_one_group_get_distinct_consecutive_sequences(
    with_commit: Opened,
) -> None:
    outcomes = create_at_once(with_commit, [plan("checkout", v) for v in range(1, 5)])
    assert sorted(outcomes) == [1, 2, 3, 4]  # type: ignore[type-var]
    R = schema.releases
    with with_commit.engine.connect() as conn:
        rows = conn.execute(sa.select(R).order_by(R.c.sequence)).all()
    assert [r.previous_id for r in rows] == [None, *(r.id for r in rows[:-1])]
    chain = verify_chain(with_commit.engine)
    assert chain.ok and chain.count == 4 + 1  # + the admin token's creation


def test_groups_count_their_sequences_independently(with_commit: Opened) -> None:
    plans = [plan(g, v) for g in ("checkout", "payments") for v in (1, 2)]
    assert sorted(create_at_once(with_commit, plans)) == [1, 1, 2, 2]  # type: ignore[type-var]
    R = schema.releases
    with with_commit.engine.connect() as conn:
        got = conn.execute(sa.select(R.c.group, R.c.sequence).order_by(R.c.group, R.c.sequence))
        assert [tuple(r) for r in got] == [("checkout", 1), ("checkout", 2), ("payments", 1),
                                           ("payments", 2)]  # fmt: skip


def test_rows_become_releases_at_the_store_edge(with_commit: Opened) -> None:
    """releases/rows.py: a stored row reads back as exactly the Release that was inserted."""
    from konorkestra.center.releases.rows import RELEASE_COLUMNS, release_from_row

    releaser = Releaser([with_commit.signers["release"]], source_repo="test-repo")
    with with_commit.engine.begin() as conn:
        first = releaser.insert(conn, plan("checkout", 1))
        second = releaser.insert(conn, plan("checkout", 2))
    R = schema.releases
    with with_commit.engine.connect() as conn:
        rows = conn.execute(sa.select(*RELEASE_COLUMNS).order_by(R.c.sequence)).all()
    assert [release_from_row(r._mapping) for r in rows] == [first, second]
    assert second.previous_id == first.id and second.policy.strategy == "all"


def test_release_created_is_audited_with_the_keys_that_signed_it(with_commit: Opened) -> None:
    """An auditor reads which release-role keys signed a Release from its audit event."""
    from konorkestra.center.store.audit import list_audit
    from konorkestra.trust import Signer

    second_key = Signer.generate()
    keys = [with_commit.signers["release"], second_key]
    releaser = Releaser(keys, source_repo="test-repo")
    with with_commit.engine.begin() as conn:
        release = releaser.insert(conn, plan("checkout", 1))
    events = [e for e in list_audit(with_commit.engine, after=0, limit=100)
              if e.action == "release.created"]  # fmt: skip
    assert len(events) == 1
    event = events[0]
    assert event.actor == "alice"
    assert event.details["release"] == release.id
    assert event.details["keys"] == [with_commit.signers["release"].keyid, second_key.keyid]
    assert len(set(event.details["keys"])) == 2
    assert verify_chain(with_commit.engine).ok
