"""``konorkestra demo`` outside a source checkout (an installed wheel) says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from konorkestra.cli.demo import demo
from konorkestra.demo import stack


def test_demo_without_the_checkouts_examples_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "CHECKOUT", tmp_path)  # as installed: no examples/ beside it
    result = CliRunner().invoke(demo, [])
    assert result.exit_code == 1
    assert "source checkout" in result.output and "make demo" in result.output
    assert "Traceback" not in result.output
