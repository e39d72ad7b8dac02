"""How a semantic diff reads in a terminal: ``+``/``-``/``~`` lines, coloured on a terminal.

Example::

    from rich.console import Console
    from konorkestra.cli.diff_view import render_diff
    render_diff(Console(), diff_resolved(before, after))

Invariants:

* Every line of a change starts (after its indent) with ``+`` (added), ``-``
  (removed), ``~`` (changed) or ``=`` (context: unchanged), so the output can be
  read, and grepped, without colour. Colour (green, red, yellow, dim) is added
  only when rich writes to a terminal.
* Nothing from the repo is read as rich markup: every line is a plain
  :class:`rich.text.Text`.
* The order is the diff's (:mod:`konorkestra.repo.semdiff` SD1, SD2, SD12):
  this module only draws, it decides nothing. ``konorctl plan`` draws with it.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from konorkestra.model.definitions import FileEntry
from konorkestra.repo.semdiff import ConfigSetDiff, FileChange, GroupDiff, SemanticDiff
from konorkestra.repo.valuediff import SIGN

_STYLE = {"+": "green", "-": "red", "~": "yellow", "=": "dim"}
_CS_SIGN = {**SIGN, "same": "="}


def line(console: Console, indent: int, text: str, *, bold: bool = False) -> None:
    """One ``+``/``-``/``~``/``=`` line, coloured by its sign; ``text`` is plain text."""
    style = _STYLE.get(text[:1], "")
    style = f"bold {style}".strip() if bold else style
    console.print(Text(" " * indent + text, style=style))


def _entry(entry: FileEntry) -> str:
    algorithm, _, hexdigest = entry.digest.partition(":")
    return f"{algorithm}:{hexdigest[:12]} ({entry.size} bytes)"


def file_line(change: FileChange) -> str:
    """``~ file P: sha256:ab… (10 bytes) → sha256:cd… (12 bytes)`` (contents never shown)."""
    where = f"{SIGN[change.op]} file {change.path}"
    if change.old is not None and change.new is not None:
        return f"{where}: {_entry(change.old)} → {_entry(change.new)}"
    entry = change.new if change.new is not None else change.old
    assert entry is not None
    return f"{where}: {_entry(entry)}"


def configset_title(cs: ConfigSetDiff) -> str:
    """``~ ConfigSet checkout-api 1 → 2`` with a note when the content did not change."""
    sign = _CS_SIGN[cs.op]
    if cs.op in ("add", "remove", "same"):
        version = cs.new_version if cs.new_version is not None else cs.old_version
        return f"{sign} ConfigSet {cs.name} {version}"
    if cs.old_version == cs.new_version:
        return f"{sign} ConfigSet {cs.name} {cs.new_version} (content changed, same version)"
    note = "" if cs.content_changed else " (same data, schema and files)"
    return f"{sign} ConfigSet {cs.name} {cs.old_version} → {cs.new_version}{note}"


def render_configset(console: Console, cs: ConfigSetDiff, indent: int = 0) -> None:
    """The ConfigSet's title, then its data, schema and file changes below it."""
    line(console, indent, configset_title(cs), bold=True)
    if cs.op == "same":
        return
    for change in cs.data:
        line(console, indent + 4, change.line())
    for change in cs.schema:
        line(console, indent + 4, change.line(prefix="schema"))
    for file_change in cs.files:
        line(console, indent + 4, file_line(file_change))


def render_policy(console: Console, group: GroupDiff, indent: int) -> None:
    """The governing Policy: ``= Policy canary`` or its fields before → after."""
    policy = group.policy
    current = policy.new if policy.new is not None else policy.old
    assert current is not None
    if not policy.fields:
        line(console, indent, f"= Policy {current.name} (unchanged)")
        return
    sign = {"add": "+", "remove": "-"}.get(group.op, "~")
    line(console, indent, f"{sign} Policy {current.name}", bold=True)
    for field in policy.fields:
        if group.op == "add":
            line(console, indent + 4, f"+ {field.field}: {field.new}")
        elif group.op == "remove":
            line(console, indent + 4, f"- {field.field}: {field.old}")
        else:
            line(console, indent + 4, f"~ {field.field}: {field.old} → {field.new}")


def render_group(console: Console, group: GroupDiff) -> None:
    """One Group: its ConfigSets (SD2), then its Policy (SD10)."""
    line(console, 0, f"{SIGN[group.op]} Group {group.name}", bold=True)
    for cs in group.configsets:
        render_configset(console, cs, indent=2)
    render_policy(console, group, indent=2)


def summary(diff: SemanticDiff) -> str:
    """``2 Groups changed, 1 added, 0 removed, 3 unchanged`` or ``no difference: ...``."""
    counts = diff.to_json()["summary"]
    if not diff.changed:
        return f"no difference: {_groups(counts['unchanged'])} unchanged"
    return (
        f"{_groups(counts['changed'])} changed, {counts['added']} added, "
        f"{counts['removed']} removed, {counts['unchanged']} unchanged"
    )


def _groups(count: int) -> str:
    return f"{count} Group{'' if count == 1 else 's'}"


def render_diff(console: Console, diff: SemanticDiff, header: str | None = None) -> None:
    """The whole diff: an optional header, every listed Group, a summary line."""
    if header:
        console.print(Text(header, style="bold"))
        console.print()
    for group in diff.groups:
        render_group(console, group)
        console.print()
    console.print(Text(summary(diff)))
