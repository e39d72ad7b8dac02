"""The Center's pure decisions import no I/O: no database, no web framework, no store.

Each module below, and every Konorkestra module it imports (transitively, read
with :mod:`ast` as ``tests/test_architecture.py`` reads them: a module's parent
packages do not count), imports nothing of ``konorkestra.center`` but the pure
decisions themselves, and no I/O library. Their rules are tested by name
without a database in the ``test_*`` module each docstring names.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE_DECISIONS = {
    "konorkestra.center.ingest.plan",  # P1-P9
    "konorkestra.center.nodes.fold",  # N1-N12
    "konorkestra.center.agentapi.blobaccess",  # B1-B7
    "konorkestra.center.agentapi.freshreuse",  # F1-F6
    "konorkestra.center.releases.desired",
    "konorkestra.center.releases.convergence",  # C1-C8
    "konorkestra.center.agentapi.scope",  # S1-S3
    "konorkestra.center.agentapi.reports",  # a report body checked into types
}
IO = {
    "os", "pathlib", "io", "shutil", "tempfile", "socket", "ssl", "subprocess", "asyncio",
    "sqlite3", "time", "sqlalchemy", "starlette", "uvicorn", "httpx", "dulwich",
}  # fmt: skip


def path_of(module: str) -> Path | None:
    base = ROOT / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported(module: str) -> tuple[set[str], set[str]]:
    """(Konorkestra modules, other top-level modules) that ``module`` imports."""
    path = path_of(module)
    assert path is not None, module
    ours: set[str] = set()
    other: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            sub = [f"{node.module}.{a.name}" for a in node.names]
            names = [s for s in sub if path_of(s)] or [node.module]
        for name in names:
            if name.startswith("konorkestra"):
                ours.add(name)
            else:
                other.add(name.split(".")[0])
    return ours, other


def closure(module: str) -> tuple[set[str], set[str]]:
    seen, external, todo = set(), set(), [module]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        ours, other = imported(mod)
        external |= other
        todo.extend(ours)
    return seen, external


def test_pure_decisions_import_no_io_and_nothing_of_the_center_shell() -> None:
    bad = []
    for module in sorted(PURE_DECISIONS):
        reached, external = closure(module)
        shell = {m for m in reached if m.startswith("konorkestra.center")} - PURE_DECISIONS
        bad += [f"{module} reaches {m}" for m in sorted(shell)]
        bad += [f"{module} reaches {m} (I/O)" for m in sorted(external & IO)]
    assert not bad, "\n".join(bad)


def test_the_check_sees_a_shell_import() -> None:
    reached, external = closure("konorkestra.center.nodes.state")
    assert "konorkestra.center.nodes.fold" in reached and "sqlalchemy" in external
