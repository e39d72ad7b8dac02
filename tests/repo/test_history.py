"""Immutability of name@version across real Git history."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from konorkestra.repo import history_before, history_through, load_commit, validate


def check(repo: Any, rev: str = "HEAD") -> list[Any]:
    return validate(load_commit(repo.path, rev), history=history_before(repo.path, rev))


def test_changing_content_without_a_version_bump_names_the_earlier_commit(
    repo: Any, configset: Any
) -> None:
    repo.write("cs/web.yaml", configset("web", 1, "{port: 8080}"))
    first = repo.commit("add web")
    repo.write("cs/web.yaml", configset("web", 1, "{port: 9090}"))
    repo.commit("tweak web port")
    [diag] = check(repo)
    assert diag.code == "immutable-version"
    assert (diag.file, diag.line, diag.path) == ("cs/web.yaml", 3, "/metadata/version")
    assert first[:7] in diag.message and "add web" in diag.message
    assert diag.hint is not None and "2" in diag.hint


def test_bumping_the_version_or_reformatting_is_fine(repo: Any, configset: Any) -> None:
    repo.write("web.yaml", configset("web", 1, "{port: 8080, host: a}"))
    repo.commit("add web")
    # Same content, other formatting and file name: same digest.
    (repo.path / "web.yaml").unlink()
    repo.write("moved/web.yml", configset("web", 1, "\n    host: 'a'\n    port: 8080"))
    repo.commit("reformat")
    assert check(repo) == []
    repo.write(
        "moved/web.yml",
        configset("web", 1, "{port: 8080, host: a}")
        + "---\n"
        + configset("web", 2, "{port: 9090}"),
    )
    repo.commit("web v2")
    assert check(repo) == []


def test_changing_a_shipped_file_is_a_content_change(repo: Any, configset: Any) -> None:
    repo.write("files/app.conf", "workers 2;\n")
    repo.write("web.yaml", configset("web", 1, extra="  files: [files/app.conf]\n"))
    repo.commit("add web")
    repo.write("files/app.conf", "workers 4;\n")
    repo.commit("more workers")
    assert [d.code for d in check(repo)] == ["immutable-version"]


def test_history_follows_first_parents_and_the_first_publication_wins(
    repo: Any, configset: Any
) -> None:
    repo.write("web.yaml", configset("web", 1, "{v: 1}"))
    c1 = repo.commit("one")
    repo.write("web.yaml", configset("web", 1, "{v: 2}"))  # a violation that slipped in
    repo.commit("two")
    history = history_through(repo.path, "HEAD")
    assert history["web@1"].commit == c1
    assert history_before(repo.path, c1) == {}
    assert len(history_before(repo.path, "HEAD")) == 1


def test_unborn_head_has_empty_history(tmp_path: Path, env: dict[str, str]) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path / "r")], env=env, check=True)
    assert len(history_through(tmp_path / "r", "HEAD")) == 0


def test_history_walk_reuses_work_across_commits(repo: Any, configset: Any) -> None:
    files, commits = 60, 30
    for i in range(files):
        repo.write(f"team{i % 6}/cs{i}.yaml", configset(f"cs{i}", 1, f"{{n: {i}}}"))
    repo.write("other/readme.yaml", "not: ours\n")
    repo.commit("initial")
    for c in range(commits):
        repo.write(
            f"team0/cs{c % files}.yaml",
            configset(f"cs{c % files}", 1, f"{{n: {c % files}}}")
            + "---\n"
            + configset(f"cs{c % files}", c + 2, f"{{n: {c}}}"),
        )
        repo.commit(f"change {c}")
    history = history_through(repo.path, "HEAD")
    assert len(history) == files + commits
    stats = history.stats
    assert stats.commits == commits + 1
    # Each definition file is parsed once per distinct blob, not once per commit.
    assert stats.files_parsed <= files + 1 + commits
    assert stats.digests_computed <= files + 2 * commits
