"""The documentation's links hold: every relative Markdown link lands on a file of
this repository, every anchor on a heading, and the index and the ADRs stay whole.

Checked pages: ``docs/**/*.md``, ``README.md``, ``hooks/README.md``,
``examples/**/*.md`` and ``sdks/**/README.md``. Links inside fenced code blocks
and inline code are not links; ``http(s):`` and ``mailto:`` links are not
followed (no network in tests).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ADR_DIR = DOCS / "adr"
SKIP_PARTS = {".cache", ".venv", "node_modules", "target", "build"}

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def pages() -> list[Path]:
    found = {ROOT / "README.md", ROOT / "hooks" / "README.md"}
    found |= set(DOCS.rglob("*.md"))
    found |= set((ROOT / "examples").rglob("*.md"))
    found |= set((ROOT / "sdks").rglob("README.md"))
    return sorted(p for p in found if p.is_file() and not SKIP_PARTS & set(p.parts))


def prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    body = prose(text)
    return INLINE_LINK.findall(body) + REF_DEF.findall(body)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LNM")
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(prose(text)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def broken_links(page: Path, text: str | None = None) -> list[str]:
    """What is wrong with the links of ``page`` (whose text is ``text`` if given)."""
    text = page.read_text(encoding="utf-8") if text is None else text
    problems = []
    for target in links(text):
        if not target or SCHEME.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        if path_part.startswith("/"):
            problems.append(f"{target}: absolute path (use a path relative to the page)")
            continue
        if not path_part:
            if anchor not in anchors(text):
                problems.append(f"{target}: no such heading on this page")
            continue
        dest = (page.parent / path_part).resolve()
        if not dest.is_relative_to(ROOT):
            problems.append(f"{target}: leaves the repository")
        elif not dest.exists():
            problems.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text("utf-8")):
            problems.append(f"{target}: no heading #{anchor} in {rel(dest)}")
    return problems


@pytest.mark.parametrize("page", pages(), ids=rel)
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_checker_finds_what_is_broken() -> None:
    text = (
        "# Probe\n[ok](../../README.md#documentation) [here](#probe) [gone](nowhere.md)\n"
        "[anchor](../../README.md#no-such-heading) [self](#nothing) [up](../../../x.md)\n"
        "[abs](/etc/passwd) `[in code](nowhere.md)` [web](https://example.org/x.md)\n"
        "```\n[in a block](nowhere.md)\n```\n[ref]: ../adr/none.md\n"
    )
    problems = broken_links(DOCS / "guide" / "probe.md", text)  # the page need not exist
    assert problems == [
        "nowhere.md: no such file",
        "../../README.md#no-such-heading: no heading #no-such-heading in README.md",
        "#nothing: no such heading on this page",
        "../../../x.md: leaves the repository",
        "/etc/passwd: absolute path (use a path relative to the page)",
        "../adr/none.md: no such file",
    ]


def test_slugs_follow_github() -> None:
    assert slug("Deleting Groups") == "deleting-groups"
    assert slug("`konorctl plan`: what a push would do") == "konorctl-plan-what-a-push-would-do"
    assert slug("Node-report retention (30 days)") == "node-report-retention-30-days"


def adrs() -> list[Path]:
    return sorted(ADR_DIR.glob("[0-9][0-9][0-9][0-9]-*.md"))


def test_adrs_are_numbered_one_by_one() -> None:
    numbers = [int(p.name[:4]) for p in adrs()]
    assert numbers, "no ADRs found"
    assert numbers == list(range(1, len(numbers) + 1)), "a gap or a repeated number"
    assert sorted(p.name for p in ADR_DIR.glob("*.md")) == [p.name for p in adrs()]


@pytest.mark.parametrize("adr", adrs(), ids=lambda p: p.name[:4])
def test_every_adr_has_a_status_line(adr: Path) -> None:
    status = re.search(r"^Status: (\S.*)$", adr.read_text(encoding="utf-8"), re.M)
    assert status, f"{rel(adr)} has no 'Status: ...' line"
    assert re.match(r"(Proposed|Accepted|Superseded by ADR \d{4}|Deprecated)\b", status[1])


@pytest.mark.parametrize("adr", adrs(), ids=lambda p: p.name[:4])
def test_no_adr_points_outside_the_repository(adr: Path) -> None:
    text = adr.read_text(encoding="utf-8")
    assert not re.search(r"\.\./shared|/work/|(?<![\w.~])/(home|Users|tmp)/", text)
    for target in links(text):
        if not SCHEME.match(target):
            dest = (adr.parent / target.partition("#")[0]).resolve()
            assert not target.startswith("/") and dest.is_relative_to(ROOT), target


def test_the_index_lists_every_page() -> None:
    index = DOCS / "README.md"
    listed = {(index.parent / t.partition("#")[0]).resolve() for t in links(index.read_text())}
    pages_ = {p.resolve() for p in DOCS.rglob("*.md") if p != index and p.parent != ADR_DIR}
    assert sorted(rel(p) for p in pages_ - listed) == []


def test_the_codemap_lists_every_adr() -> None:
    codemap = DOCS / "contributing" / "codemap.md"
    listed = {(codemap.parent / t.partition("#")[0]).resolve() for t in links(codemap.read_text())}
    assert sorted(rel(p) for p in set(adrs()) - listed) == []
