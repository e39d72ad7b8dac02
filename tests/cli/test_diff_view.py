"""How the semantic diff is drawn: every change line keeps its mark, markup is never read."""

from __future__ import annotations

import io

from rich.console import Console

from konorkestra.cli.diff_view import configset_title, render_diff
from konorkestra.model.definitions import ConfigSet, FileEntry, Policy, Step
from konorkestra.model.types import ConfigSetName, GroupName, PolicyName
from konorkestra.repo.resolve import Resolved, ResolvedConfigSet, ResolvedGroup
from konorkestra.repo.semdiff import SemanticDiff, diff_configsets, diff_resolved


def cs(version: int, data: dict[str, object], **kw: object) -> ConfigSet:
    return ConfigSet(ConfigSetName("web"), version, data, **kw)  # type: ignore[arg-type]


def group(name: str, policy: Policy, *sets: ConfigSet) -> ResolvedGroup:
    members = tuple(ResolvedConfigSet(c.name, c.version, c.digest(), c.blob(), {}, c) for c in sets)
    return ResolvedGroup(GroupName(name), policy, policy.digest(), members)


def draw(diff: SemanticDiff) -> list[str]:
    out = io.StringIO()
    render_diff(Console(file=out, width=200, highlight=False, soft_wrap=True), diff)
    return out.getvalue().splitlines()


FAST = Policy(PolicyName("fast"), "all-at-once", (Step(100),))
SLOW = Policy(PolicyName("slow"), "all-at-once", (Step(100),), approval="manual")


def test_a_removed_group_and_a_group_that_switches_policy() -> None:
    web = cs(1, {"note": "[bold]not markup[/bold]"})
    before = Resolved({"a": group("a", FAST, web), "b": group("b", FAST, web)}, {})
    after = Resolved({"b": group("b", SLOW, web)}, {})
    assert draw(diff_resolved(before, after)) == [
        "- Group a",
        "  - ConfigSet web 1",
        '      - /note: "[bold]not markup[/bold]"',
        "  - Policy fast",
        "      - name: fast",
        "      - strategy: all-at-once",
        "      - steps: 100%",
        "      - guards: none",
        "      - onFailure: rollback",
        "      - approval: auto",
        "",
        "~ Group b",
        "  = ConfigSet web 1",
        "  ~ Policy slow",
        "      ~ name: fast → slow",
        "      ~ approval: auto → manual",
        "",
        "1 Group changed, 0 added, 1 removed, 0 unchanged",
    ]


def test_titles_say_when_only_the_version_or_only_the_content_changed() -> None:
    assert configset_title(diff_configsets(cs(1, {"a": 1}), cs(2, {"a": 1}))) == (
        "~ ConfigSet web 1 → 2 (same data, schema and files)"
    )
    assert configset_title(diff_configsets(cs(2, {"a": 1}), cs(2, {"a": 2}))) == (
        "~ ConfigSet web 2 (content changed, same version)"
    )


def test_files_added_and_removed_show_digest_and_size() -> None:
    conf = FileEntry.of(b"x = 1\n")
    before = Resolved({"g": group("g", FAST, cs(1, {}, files={"old.conf": conf}))}, {})
    after = Resolved({"g": group("g", FAST, cs(2, {}, files={"new.conf": conf}))}, {})
    short = conf.digest[:19]
    assert draw(diff_resolved(before, after))[2:4] == [
        f"      + file new.conf: {short} (6 bytes)",
        f"      - file old.conf: {short} (6 bytes)",
    ]
