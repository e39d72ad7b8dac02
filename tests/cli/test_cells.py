"""The one-line table cells of ``konorctl audit`` and ``konorctl commits`` (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from konorkestra.cli.cells import (
    MIN_CELL,
    details_cell,
    diagnostic_cell,
    fit,
    last_column_width,
)

DIAG = {"file": "groups/broken.yaml", "line": 6, "column": 11, "severity": "error",
        "message": "names Policy 'no-such-policy', which does not exist"}  # fmt: skip


@given(st.text(), st.integers(1, 200))
def test_fit_never_exceeds_the_width_and_keeps_what_fits(text: str, width: int) -> None:
    got = fit(text, width)
    assert len(got) <= width and "\n" not in got
    flat = " ".join(text.split())
    assert got == flat if len(flat) <= width else got.endswith("…")


def test_details_are_key_value_pairs_without_empty_values() -> None:
    details = {"sha": "ab12", "subject": "fix it", "errors": 1, "groups": ["a", "b"],
               "actor": None, "reason": "", "nodes": []}  # fmt: skip
    assert details_cell(details) == 'errors=1 groups=["a","b"] sha=ab12 subject="fix it"'
    assert details_cell({"k": "a=b"}) == 'k="a=b"'
    assert details_cell(details, 20) == 'errors=1 groups=["a…'


def test_a_diagnostic_cell_keeps_its_more_count_however_short() -> None:
    full = diagnostic_cell(DIAG, 3, None)
    assert full == "groups/broken.yaml:6:11: names Policy 'no-such-policy', which does not " \
        "exist (+2 more)"  # fmt: skip
    short = diagnostic_cell(DIAG, 3, 30)
    assert len(short) == 30 and short.endswith("… (+2 more)")
    assert diagnostic_cell(DIAG, 3, 1).endswith("(+2 more)")  # never below MIN_CELL
    assert diagnostic_cell(DIAG, 1, None).endswith("exist")
    assert diagnostic_cell(None, 0, 40) == ""
    assert diagnostic_cell({"message": "no groups"}, 1, None) == "(repo): no groups"


def test_the_last_column_gets_what_the_others_leave() -> None:
    rows = [("seq", "action"), ("12", "commit.accepted")]
    # 3 + 15 = 18 of text, 3 borders and paddings per column: 18 + 9 + 1 = 28.
    assert last_column_width(rows, 100) == 72
    assert last_column_width(rows, 30) == MIN_CELL
