"""The import graph of ``konorkestra/``, read with :mod:`ast`: no cycles, layers, small modules.

Every ``import`` and ``from ... import`` counts: top-level ones, those inside
functions and those under ``if TYPE_CHECKING:`` (a type-only import is still an
arrow a reader follows). ``from pkg import name`` is an edge to ``pkg.name``
when that is a module, else to ``pkg`` (its ``__init__``). Importing a module
does not count as importing its parent packages.

Rules (``docs/contributing/codemap.md``, "the rules of the house"):

1. **No cycles.** No two files import each other, directly or round a loop.
2. **Layers.** ``model`` imports nothing from Konorkestra but ``model``;
   ``repo`` only ``model``/``repo``; ``trust`` only ``model``/``trust``;
   ``agent`` never ``center`` or ``cli``; ``center`` never ``agent`` or ``cli``;
   ``sdk`` only ``sdk``/``model``; ``durable`` nothing; ``keyfiles`` only
   ``durable``/``trust``; ``rollout`` only ``model``/``rollout``. Anyone may
   import the root package (``__version__``), which imports nothing.
3. **Pure cores.** ``model``, ``trust`` and ``rollout`` import no I/O module of
   the standard library or of a dependency (files, sockets, processes, HTTP, SQL).
4. **Small modules.** No module over :data:`MAX_LINES` lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "konorkestra"
MAX_LINES = 400

LAYERS: dict[str, tuple[set[str] | None, set[str]]] = {
    # layer: (the only layers it may import, or None for any; layers it must never import)
    "model": ({"model"}, set()),
    "repo": ({"model", "repo"}, set()),
    "trust": ({"model", "trust"}, set()),
    "agent": (None, {"center", "cli"}),
    "center": (None, {"agent", "cli"}),
    "sdk": ({"sdk", "model"}, set()),
    "durable": (set(), set()),
    "keyfiles": ({"durable", "trust"}, set()),
    "rollout": ({"model", "rollout"}, set()),
}
PURE = {"model", "trust", "rollout"}
IO_MODULES = {
    "os", "pathlib", "io", "shutil", "tempfile", "glob", "socket", "ssl", "subprocess",
    "asyncio", "selectors", "fcntl", "mmap", "sqlite3", "urllib.request", "http.client",
    "httpx", "sqlalchemy", "dulwich", "uvicorn", "starlette",
}  # fmt: skip


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    names: tuple[str, ...]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` is or lies inside."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(mod: str, path: Path, known: dict[str, Path]) -> Iterator[Edge | tuple[str, int]]:
    """Edges to Konorkestra modules, and ``(name, line)`` for every other imported module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = resolve(alias.name, known)
                if target is not None and alias.name.startswith("konorkestra"):
                    yield Edge(mod, target, node.lineno, ())
                else:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            if not base.startswith("konorkestra"):
                yield base, node.lineno
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in known else resolve(base, known)
                if target is not None:
                    yield Edge(mod, target, node.lineno, (alias.name,))


def graph() -> tuple[dict[str, Path], list[Edge], dict[str, list[tuple[str, int]]]]:
    known = modules()
    edges: list[Edge] = []
    external: dict[str, list[tuple[str, int]]] = {}
    for mod, path in known.items():
        for item in imports(mod, path, known):
            if isinstance(item, Edge):
                if item.target != mod:
                    edges.append(item)
            else:
                external.setdefault(mod, []).append(item)
    return known, edges, external


def layer(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "konorkestra"


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    succ: dict[str, set[str]] = {}
    for e in edges:
        succ.setdefault(e.source, set()).add(e.target)
        succ.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(succ):
        if root in index:
            continue
        work = [(root, iter(sorted(succ[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(succ[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def describe(comp: list[str], edges: list[Edge], known: dict[str, Path]) -> str:
    inside = set(comp)
    lines = [f"cycle among {len(comp)} modules:"]
    for e in sorted(edges, key=lambda e: (e.source, e.target, e.line)):
        if e.source in inside and e.target in inside:
            where = known[e.source].relative_to(ROOT)
            line = f"  {where}:{e.line}: {e.source} -> {e.target}"
            if line not in lines:
                lines.append(line)
    return "\n".join(lines)


def report(title: str, violations: list[str]) -> str:
    text = f"{title} ({len(violations)}):\n" + "\n".join(violations)
    print(text)
    return text


# -- the rules ----------------------------------------------------------------------------


def test_rule1_no_import_cycles() -> None:
    known, edges, _ = graph()
    bad = cycles(edges)
    assert not bad, report("import cycles", [describe(c, edges, known) for c in bad])


def test_rule2_layers() -> None:
    known, edges, _ = graph()
    bad = []
    for e in edges:
        src, dst = layer(e.source), layer(e.target)
        if src == dst or src not in LAYERS or e.target == "konorkestra":
            continue
        only, never = LAYERS[src]
        if (only is not None and dst not in only) or dst in never:
            where = known[e.source].relative_to(ROOT)
            bad.append(f"  {where}:{e.line}: {src} must not import {dst}: {e.target}")
    assert not bad, report("layer violations", bad)


def test_rule3_pure_cores_import_no_io() -> None:
    known, _, external = graph()
    bad = []
    for mod, names in sorted(external.items()):
        if layer(mod) not in PURE:
            continue
        for name, line in names:
            if name in IO_MODULES or name.split(".")[0] in IO_MODULES - {"urllib", "http"}:
                bad.append(f"  {known[mod].relative_to(ROOT)}:{line}: {mod} imports {name}")
    assert not bad, report("I/O in a pure core", bad)


def test_rule4_no_module_over_the_limit() -> None:
    bad = []
    for path in modules().values():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            bad.append(f"  {path.relative_to(ROOT)}: {n} lines (limit {MAX_LINES})")
    assert not bad, report(f"modules over {MAX_LINES} lines", bad)


# -- the checker itself -------------------------------------------------------------------


def test_the_checker_sees_type_only_and_function_level_imports(tmp_path: Path) -> None:
    a = tmp_path / "a.py"
    a.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from konorkestra.b import X\n"
        "def f():\n    import konorkestra.c\n"
    )
    known = {"konorkestra.a": a, "konorkestra.b": a, "konorkestra.c": a}
    found = {e.target for e in imports("konorkestra.a", a, known) if isinstance(e, Edge)}
    assert found == {"konorkestra.b", "konorkestra.c"}


def test_the_root_package_imports_nothing() -> None:
    known, edges, _ = graph()
    assert "konorkestra" in known
    assert [e for e in edges if e.source == "konorkestra"] == []


def test_the_checker_finds_a_loop() -> None:
    loop = [Edge("k.a", "k.b", 1, ()), Edge("k.b", "k.c", 1, ()), Edge("k.c", "k.a", 1, ())]
    assert cycles(loop) == [["k.a", "k.b", "k.c"]]
    assert cycles(loop[:2]) == []
