"""The audit log is a hash chain: any edit or removal is found at the first bad row."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.app.datadir import Opened
from konorkestra.center.store import schema
from konorkestra.center.store.audit import append, verify_chain
from konorkestra.trust.checkpoint import GENESIS
from tests.helpers.inproc import Api

pytestmark = pytest.mark.postgresql

A = schema.audit


def _fill(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        for i in range(n):
            append(conn, "alice", "release.created", {"group": "checkout", "sequence": i + 1})


def test_a_fresh_chain_verifies_and_links_each_row_to_the_previous(opened: Opened) -> None:
    engine = opened.engine
    _fill(engine, 5)
    result = verify_chain(engine)
    assert result.ok and result.first_bad is None
    with engine.connect() as conn:
        rows = conn.execute(sa.select(A).order_by(A.c.seq)).all()
    assert rows[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    assert result.head == rows[-1].hash and result.count == len(rows)


def test_editing_one_row_in_the_database_fails_verification_at_that_row(opened: Opened) -> None:
    engine = opened.engine
    _fill(engine, 6)
    with engine.connect() as conn:
        target = conn.execute(sa.select(A.c.seq).order_by(A.c.seq).offset(3).limit(1)).scalar()
    with engine.begin() as conn:  # a raw edit, as an attacker with DB access would do
        conn.execute(
            sa.update(A)
            .where(A.c.seq == target)
            .values(details={"group": "checkout", "sequence": 999})
        )
    result = verify_chain(engine)
    assert not result.ok
    assert result.first_bad == target
    assert "hash" in (result.reason or "")


def test_rehashing_an_edited_row_is_caught_at_the_next_row(opened: Opened) -> None:
    from konorkestra.center.store.audit import row_hash

    engine = opened.engine
    _fill(engine, 4)
    with engine.begin() as conn:
        row = conn.execute(sa.select(A).where(A.c.seq == 2)).one()
        forged = row_hash(2, row.at, "mallory", row.action, row.details, row.prev_hash)
        conn.execute(sa.update(A).where(A.c.seq == 2).values(actor="mallory", hash=forged))
    result = verify_chain(engine)
    assert (result.ok, result.first_bad) == (False, 3)


def test_removing_a_row_is_caught_at_the_row_after_it(opened: Opened) -> None:
    engine = opened.engine
    _fill(engine, 5)
    with engine.begin() as conn:
        conn.execute(sa.delete(A).where(A.c.seq == 3))
    result = verify_chain(engine)
    assert (result.ok, result.first_bad) == (False, 4)
    assert "removed" in (result.reason or "")


def test_append_rolls_back_with_its_transaction(opened: Opened) -> None:
    engine = opened.engine
    before = verify_chain(engine).count
    try:
        with engine.begin() as conn:
            append(conn, "bob", "commit.accepted", {"sha": "ab"})
            raise RuntimeError("the change it describes failed")
    except RuntimeError:
        pass
    assert verify_chain(engine).count == before


def test_audit_api_lists_events_and_verifies(api: Api) -> None:
    events = api.get("/v1/audit").json()["events"]
    assert [e["action"] for e in events] == ["token.created"] * 3
    verdict = api.get("/v1/audit/verify").json()
    assert verdict["ok"] is True and verdict["count"] == 3 and verdict["first_bad"] is None
