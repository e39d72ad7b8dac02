"""AnalysisCache: a warm cache gives exactly the cold result, and only redoes what changed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from konorkestra.repo import (
    AnalysisCache,
    History,
    Snapshot,
    history_before,
    load_commit,
    load_worktree,
    resolve,
    validate,
)
from konorkestra.repo.analysis import Analysis, analyze
from konorkestra.repo.diagnostics import Diagnostic, has_errors

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CASES = sorted(p for p in (EXAMPLES / "invalid").iterdir() if p.is_dir())


def summary(analysis: Analysis) -> dict[str, Any]:
    """Everything an analysis decides, in order, with digests and blob bytes."""
    return {
        "diagnostics": analysis.diagnostics,
        "configsets": [
            (
                key,
                built.configset.digest() if built.configset else None,
                built.configset.blob() if built.configset else None,
                built.files,
                built.diagnostics,
            )
            for key, built in analysis.configsets.items()
        ],
        "defs": [(k, d.file, d.line, d.doc.index) for k, d in analysis.configset_defs.items()],
        "versions": analysis.versions,
        "policies": analysis.policies,
        "groups": analysis.groups,
        "names": analysis.names,
    }


def released(snapshot: Snapshot, analysis: Analysis | None = None) -> dict[str, Any]:
    resolved = resolve(snapshot, analysis=analysis)
    return {
        name: (
            g.policy,
            g.policy_digest,
            [(c.key, c.digest, c.blob, c.files) for c in g.configsets],
        )
        for name, g in resolved.groups.items()
    } | {"*": sorted((k, c.digest) for k, c in resolved.configsets.items())}


def assert_same(
    cold: Snapshot, warm: Snapshot, cache: AnalysisCache, history: History | None
) -> list[Diagnostic]:
    """Cold (no cache) and warm (through ``cache``) agree on everything; returns diagnostics."""
    assert warm.definitions == cold.definitions and warm.diagnostics == cold.diagnostics
    cold_analysis, warm_analysis = analyze(cold), analyze(warm, cache=cache)
    assert summary(warm_analysis) == summary(cold_analysis)
    expected = validate(cold, history=history)
    assert validate(warm, history=history, analysis=warm_analysis) == expected
    assert validate(warm, history=history, cache=cache) == expected
    if not has_errors([*cold.diagnostics, *cold_analysis.diagnostics]):
        assert released(warm, warm_analysis) == released(cold)
        assert released(warm) == released(cold)
    return expected


def test_every_example_gives_the_same_result_cold_and_warm() -> None:
    cache = AnalysisCache()
    seen: list[list[Diagnostic]] = []
    for rounds in range(2):  # the second round runs entirely from the cache
        parses = cache.stats.parses
        for case in [EXAMPLES / "config-repo", *CASES]:
            found = assert_same(load_worktree(case), load_worktree(case, cache=cache), cache, None)
            if rounds == 0:
                seen.append(found)
        if rounds == 1:
            assert cache.stats.parses == parses  # nothing parsed again
    assert seen[0] == [] and all(seen[1:])  # the valid repo, then every invalid case


def configset(name: str, version: int, data: str, extra: str = "") -> str:
    return (
        f"apiVersion: konorkestra.io/v1\nkind: ConfigSet\n"
        f"metadata: {{name: {name}, version: {version}}}\nspec:\n  data: {data}\n{extra}"
    )


GROUP = """\
apiVersion: konorkestra.io/v1
kind: Group
metadata: {name: shop}
spec:
  configSets: [web, api@1]
  policy: careful
"""
POLICY = """\
apiVersion: konorkestra.io/v1
kind: Policy
metadata: {name: careful}
spec:
  strategy: canary
  steps: [{percent: 10, bake: 5m}, {percent: %d}]
"""
API_SCHEMA = '{"type": "object", "properties": {"port": {"type": "%s"}}}'
WEB_FILES = "  files: [files/app.conf]\n"
API_REF = '  schema: {$ref: "schemas/api.json"}\n'


def edits() -> list[tuple[str, Callable[[Path], None], set[str]]]:
    """A history: (subject, edit of the work tree, error codes of the resulting commit)."""

    def write(rel: str, text: str) -> Callable[[Path], None]:
        def do(root: Path) -> None:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)

        return do

    def remove(rel: str) -> Callable[[Path], None]:
        return lambda root: (root / rel).unlink()

    def rename(old: str, new: str) -> Callable[[Path], None]:
        def do(root: Path) -> None:
            (root / new).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(root / old, root / new)

        return do

    def both(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
        def do(root: Path) -> None:
            for step in steps:
                step(root)

        return do

    web1 = configset("web", 1, "{port: 8080}", WEB_FILES)
    api1 = configset("api", 1, "{port: 80}", API_REF)
    return [
        (
            "initial",
            both(
                write("files/app.conf", "workers 2;\n"),
                write("schemas/api.json", API_SCHEMA % "integer"),
                write("cs/web.yaml", web1),
                write("cs/api.yaml", api1),
                write("groups/shop.yaml", GROUP),
                write("policies/careful.yaml", POLICY % 100),
            ),
            set(),
        ),
        (
            "edit web without bump",
            write("cs/web.yaml", web1.replace("8080", "9090")),
            {"immutable-version"},
        ),
        ("bump web", write("cs/web.yaml", configset("web", 2, "{port: 9090}", WEB_FILES)), set()),
        ("rename api", rename("cs/api.yaml", "moved/api.yml"), set()),
        ("shipped file only", write("files/app.conf", "workers 4;\n"), {"immutable-version"}),
        (
            "bump web again",
            write("cs/web.yaml", configset("web", 3, "{port: 9090}", WEB_FILES)),
            set(),
        ),
        ("schema only", write("schemas/api.json", API_SCHEMA % "string"), {"data-schema"}),
        ("schema gone", remove("schemas/api.json"), {"schema-ref"}),
        ("schema back", write("schemas/api.json", API_SCHEMA % "integer"), set()),
        ("policy broken", write("policies/careful.yaml", POLICY % 90), {"policy-steps"}),
        ("policy fixed", write("policies/careful.yaml", POLICY % 100), set()),
        ("duplicate", write("extra/api-copy.yaml", api1), {"duplicate-name"}),
        (
            "yaml broken",
            write("extra/api-copy.yaml", "apiVersion: konorkestra.io/v1\nkind: [\n"),
            {"yaml-syntax"},
        ),
        (
            "delete web",
            both(remove("extra/api-copy.yaml"), remove("cs/web.yaml")),
            {"missing-configset"},
        ),
        (
            "web back, two docs",
            write(
                "cs/web.yaml",
                configset("web", 3, "{port: 9090}", WEB_FILES)
                + "---\n"
                + configset("web", 4, "{port: 1}", WEB_FILES),
            ),
            set(),
        ),
    ]


@pytest.mark.parametrize(
    "make_cache",
    [AnalysisCache, lambda: AnalysisCache(max_entries=3), lambda: AnalysisCache(max_bytes=1)],
    ids=["default", "3-entries", "1-byte"],
)
def test_a_history_of_edits_renames_and_deletes_is_judged_the_same_warm_and_cold(
    repo: Any, make_cache: Callable[[], AnalysisCache]
) -> None:
    commit_cache, tree_cache = make_cache(), make_cache()
    for subject, edit, codes in edits():
        edit(repo.path)
        sha = repo.commit(subject)
        history = history_before(repo.path, sha)
        cold = load_commit(repo.path, sha)
        found = assert_same(
            cold, load_commit(repo.path, sha, cache=commit_cache), commit_cache, history
        )
        assert {d.code for d in found} == codes, subject
        tree = load_worktree(repo.path)
        assert_same(tree, load_worktree(repo.path, cache=tree_cache), tree_cache, None)
        for cache in (commit_cache, tree_cache):
            assert len(cache) <= cache.max_entries


def test_a_changed_blob_at_the_same_path_is_analyzed_again(repo: Any) -> None:
    cache = AnalysisCache()
    for i in range(5):
        repo.write(f"cs/c{i}.yaml", configset(f"c{i}", 1, "{port: 8080}"))
    first = repo.commit("five")
    analyze(load_commit(repo.path, first, cache=cache), cache=cache)
    stats = cache.stats
    assert (stats.parses, stats.facts_computed, stats.builds) == (5, 5, 5)
    repo.write("cs/c2.yaml", configset("c2", 1, "{port: 9090}"))
    second = repo.commit("c2 changed")
    snapshot = load_commit(repo.path, second, cache=cache)
    analysis = analyze(snapshot, cache=cache)
    assert (stats.parses, stats.facts_computed, stats.builds) == (6, 6, 6)
    assert (
        snapshot.content_keys["cs/c2.yaml"]
        != load_commit(repo.path, first).content_keys["cs/c2.yaml"]
    )
    assert analysis.configsets["c2@1"].configset is not None
    assert analysis.configsets["c2@1"].configset.data == {"port": 9090}
    # The old commit is still answered from the cache, with the old content.
    old = analyze(load_commit(repo.path, first, cache=cache), cache=cache)
    assert old.configsets["c2@1"].configset is not None
    assert old.configsets["c2@1"].configset.data == {"port": 8080}
    assert (stats.parses, stats.facts_computed, stats.builds) == (6, 6, 6)


def test_a_work_tree_rewrite_with_the_same_size_and_mtime_is_seen(tmp_path: Path) -> None:
    target = tmp_path / "web.yaml"
    target.write_text(configset("web", 1, "{port: 8080}"))
    cache = AnalysisCache()
    before = analyze(load_worktree(tmp_path, cache=cache), cache=cache)
    stat = target.stat()
    target.write_text(configset("web", 1, "{port: 9090}"))  # same size
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_size == stat.st_size
    after = analyze(load_worktree(tmp_path, cache=cache), cache=cache)
    digests = [a.configsets["web@1"].configset.digest() for a in (before, after)]  # type: ignore[union-attr]
    assert digests[0] != digests[1]
    assert digests[1] == resolve(load_worktree(tmp_path)).configsets["web@1"].digest


def test_a_changed_shipped_file_rebuilds_an_unchanged_configset(repo: Any) -> None:
    cache = AnalysisCache()
    repo.write("files/app.conf", "workers 2;\n")
    repo.write("web.yaml", configset("web", 1, "{port: 1}", WEB_FILES))
    first = resolve(load_commit(repo.path, repo.commit("one"), cache=cache), cache=cache)
    repo.write("files/app.conf", "workers 4;\n")
    second = resolve(load_commit(repo.path, repo.commit("two"), cache=cache), cache=cache)
    assert cache.stats.parses == 1 and cache.stats.builds == 2
    assert first.configsets["web@1"].digest != second.configsets["web@1"].digest
    assert second.configsets["web@1"].files == {"files/app.conf": b"workers 4;\n"}


def test_the_cache_stays_within_its_bounds(repo: Any) -> None:
    for i in range(10):
        repo.write(f"cs/c{i}.yaml", configset(f"c{i}", 1, f"{{n: {i}}}"))
    sha = repo.commit("ten")
    small = AnalysisCache(max_entries=4)
    cold = load_commit(repo.path, sha)
    assert_same(cold, load_commit(repo.path, sha, cache=small), small, None)
    assert len(small) == 4 and small.stats.evictions > 0
    tiny = AnalysisCache(max_bytes=400)
    assert_same(cold, load_commit(repo.path, sha, cache=tiny), tiny, None)
    assert tiny.size_bytes <= 400
