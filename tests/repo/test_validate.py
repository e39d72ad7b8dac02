"""Every diagnostic code, each from a broken example naming its file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from konorkestra.repo import CODES, load_worktree, validate

ROOT = Path(__file__).resolve().parents[2]
INVALID = ROOT / "examples" / "invalid"
CASES = sorted(p.name for p in INVALID.iterdir() if p.is_dir())
MARK = re.compile(r"#\s*expect:\s*([a-z-]+)")


def expected(case: Path) -> set[tuple[str, str, int]]:
    """``# expect: CODE`` comments in a case mark the file and line of each diagnostic."""
    out = set()
    for path in case.rglob("*"):
        if path.is_file():
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for code in MARK.findall(line):
                    out.add((code, path.relative_to(case).as_posix(), number))
    return out


def test_the_example_repo_is_clean() -> None:
    assert validate(load_worktree(ROOT / "examples" / "config-repo")) == []


@pytest.mark.parametrize("case", CASES)
def test_each_invalid_case_reports_its_diagnostics_where_marked(case: str) -> None:
    diagnostics = validate(load_worktree(INVALID / case))
    assert {(d.code, d.file, d.line) for d in diagnostics} == expected(INVALID / case)
    assert all(d.hint and d.message and d.column for d in diagnostics)
    assert case in {d.code for d in diagnostics}  # the case is named after its code


def test_every_code_has_an_example_or_a_history_test() -> None:
    covered = set(CASES) | {"immutable-version"}  # needs git history: see test_history.py
    covered |= {"group-deleted", "every-group-deleted"}  # need two commits: test_deletions.py
    assert covered == set(CODES)
    readme = (INVALID / "README.md").read_text()
    assert all(f"`{code}`" in readme for code in CODES)


def write(root: Path, name: str, text: str) -> None:
    target = root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def codes(root: Path) -> list[tuple[str, int | None, str]]:
    return [(d.code, d.line, d.path) for d in validate(load_worktree(root))]


def test_all_at_once_policy_has_a_single_step(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p.yaml",
        "apiVersion: konorkestra.io/v1\nkind: Policy\nmetadata: {name: p}\n"
        "spec:\n  strategy: all-at-once\n  steps: [{percent: 50}, {percent: 100}]\n",
    )
    assert codes(tmp_path) == [("policy-steps", 6, "/spec/steps/1")]


def test_canary_needs_steps(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p.yaml",
        "apiVersion: konorkestra.io/v1\nkind: Policy\n"
        "metadata: {name: p}\nspec: {strategy: canary}\n",
    )
    assert codes(tmp_path) == [("schema", 4, "/spec")]


def test_schema_ref_may_be_yaml_and_is_part_of_the_content(tmp_path: Path) -> None:
    write(tmp_path, "s/flags.yaml", "type: object\nadditionalProperties: {type: boolean}\n")
    write(
        tmp_path,
        "c.yaml",
        "apiVersion: konorkestra.io/v1\nkind: ConfigSet\n"
        "metadata: {name: f, version: 1}\nspec:\n  schema: {$ref: s/flags.yaml}\n"
        "  data: {a: true, b: 1}\n",
    )
    assert codes(tmp_path) == [("data-schema", 6, "/spec/data/b")]


def test_schema_ref_cannot_escape_or_fetch(tmp_path: Path) -> None:
    write(
        tmp_path,
        "c.yaml",
        "apiVersion: konorkestra.io/v1\nkind: ConfigSet\n"
        "metadata: {name: f, version: 1}\nspec:\n  schema: {$ref: ../x.json}\n  data: {}\n"
        "---\napiVersion: konorkestra.io/v1\nkind: ConfigSet\n"
        "metadata: {name: g, version: 1}\nspec:\n"
        "  schema: {$ref: 'https://example.invalid/s.json#/x'}\n  data: {}\n",
    )
    found = codes(tmp_path)
    assert ("schema-ref", 5, "/spec/schema/$ref") in found
    assert len(found) == 2 and {c for c, *_ in found} <= {"schema-ref", "data-schema"}


def test_huge_integers_are_refused_with_their_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        "c.yaml",
        "apiVersion: konorkestra.io/v1\nkind: ConfigSet\n"
        "metadata: {name: f, version: 1}\nspec:\n  data:\n    big: 18446744073709551616\n",
    )
    assert codes(tmp_path) == [("yaml-unsupported", 6, "/spec/data/big")]


def test_schema_errors_do_not_cascade_into_reference_errors(tmp_path: Path) -> None:
    write(
        tmp_path,
        "x.yaml",
        "apiVersion: konorkestra.io/v1\nkind: ConfigSet\n"
        "metadata: {name: web, version: 1}\nspec: {data: {}, extra: 1}\n---\n"
        "apiVersion: konorkestra.io/v1\nkind: Policy\nmetadata: {name: p}\n"
        "spec: {strategy: all-at-once, approval: maybe}\n---\n"
        "apiVersion: konorkestra.io/v1\nkind: Group\nmetadata: {name: g}\n"
        "spec: {configSets: [web], policy: p}\n",
    )
    assert [c for c, *_ in codes(tmp_path)] == ["schema", "schema"]


def test_diagnostics_are_sorted_and_collected_not_stopped(tmp_path: Path) -> None:
    for case in ("missing-policy", "guard-signal", "file-path"):
        for path in (INVALID / case).rglob("*.yaml"):
            write(tmp_path, f"{case}/{path.name}", path.read_text())
    found = validate(load_worktree(tmp_path))
    assert {d.code for d in found} == {"missing-policy", "guard-signal", "file-path"}
    assert found == sorted(found, key=lambda d: d.sort_key())
