"""Every rule the rollout modules' docstrings state has a test named after it."""

from __future__ import annotations

import re
from pathlib import Path

import konorkestra.rollout as rollout
from konorkestra.rollout import commands, engine, guards, state, waves

HERE = Path(__file__).resolve().parent
RULE = re.compile(r"^([WBAGRSD]\d+)\s{1,2}\S", re.MULTILINE)
TEST = re.compile(r"^def test_([WBAGRSD]\d+)_", re.MULTILINE)


def stated() -> set[str]:
    out: set[str] = set()
    for module in (waves, guards, commands, engine, state):
        out |= set(RULE.findall(module.__doc__ or ""))
    return out


def named_tests() -> set[str]:
    return {m for path in HERE.glob("test_*.py") for m in TEST.findall(path.read_text())}


def test_every_stated_rule_has_a_named_test() -> None:
    rules = stated()
    assert len(rules) >= 30
    assert rules - named_tests() == set()


def test_every_named_test_is_a_stated_rule() -> None:
    assert named_tests() - stated() == set()


def test_the_package_docstring_draws_the_state_diagram() -> None:
    doc = rollout.__doc__ or ""
    assert "stateDiagram-v2" in doc
    for phase in rollout.Phase:
        assert phase.value in doc, phase
