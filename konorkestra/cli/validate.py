"""``konorctl validate``: check a config repo like a compiler would.

Example::

    konorctl validate                       # the work tree in the current directory
    konorctl validate examples/config-repo -o json
    konorctl validate /srv/config.git --rev main          # a commit, + immutability
    konorctl validate . --against origin/main             # work tree vs. published history
    konorctl validate repo.git --rev X --against X~1      # + Groups deleted by X (trailer)

Exit codes: 0 clean, 1 diagnostics, 2 usage error (missing path, not a Git
repository, unknown revision) with a one-line message and no traceback.

Invariants:

* Text output is ``path:line:col: error: message [code] (hint: ...)``, grouped
  by file, coloured only on a terminal, ending with one summary line.
* With ``--against``, Groups defined at REV and missing from the target are
  judged by :func:`konorkestra.repo.deletions.deletion_diagnostics` without
  node counts: removing every Group is an error unless ``*`` is allowed; an
  un-allowed Group deletion is an error for a commit (``--rev``: its message can
  carry the ``Konorkestra-Allow-Delete`` trailer, and the Center may refuse it)
  and a warning for a work tree (the message does not exist yet). Allowed:
  ``--allow-delete`` values plus, with ``--rev``, the commit's trailers.
* ``-v`` (text output) first prints ``path:line: note: ignored document kind
  K apiVersion A`` for every document the loader judged someone else's (and
  ``path:line: note: ignored file (...)`` for a file it could not read as
  ours); see the claim rules in :mod:`konorkestra.repo.loader`.
* JSON output (``-o json``) is a stable document: ``{"format": 1, "target",
  "commit", "against", "valid", "summary", "diagnostics": [...]}`` with the
  fields of :class:`~konorkestra.repo.Diagnostic` per entry.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from konorkestra.repo import (
    Diagnostic,
    History,
    RepoError,
    Severity,
    Snapshot,
    history_before,
    history_through,
    load_commit,
    load_worktree,
)
from konorkestra.repo import (
    validate as validate_snapshot,
)
from konorkestra.repo.deletions import AllowDelete, deletion_diagnostics
from konorkestra.repo.loader import ignored_documents
from konorkestra.repo.sources import has_commits, open_repo, resolve_commit

JSON_FORMAT_VERSION = 1
_STYLE = {"error": "bold red", "warning": "bold yellow"}


def display_path(snapshot: Snapshot, root: str, file: str | None) -> str:
    """The path a user can open: under ``root`` for work trees, repo path for commits."""
    if file is None:
        return root
    if snapshot.commit is not None:
        return file
    return os.path.normpath(os.path.join(root, file))


def _summary(snapshot: Snapshot, diagnostics: list[Diagnostic]) -> str:
    kinds = Counter(d.kind for d in snapshot.definitions)
    plural = {"ConfigSet": "ConfigSets", "Policy": "Policies", "Group": "Groups"}
    what = ", ".join(f"{n} {plural[k] if n != 1 else k}" for k, n in sorted(kinds.items()))
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    files = len({d.file for d in diagnostics})
    if not diagnostics:
        return f"valid: {len(snapshot.definitions)} definitions ({what or 'none'})"
    parts = [f"{errors} error{'s' if errors != 1 else ''}"]
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return f"{', '.join(parts)} in {files} file{'s' if files != 1 else ''}"


def render_text(
    console: Console, snapshot: Snapshot, root: str, diagnostics: list[Diagnostic]
) -> None:
    """Print diagnostics grouped by file, compiler style, then a summary line."""
    current: str | None = None
    for d in diagnostics:
        path = display_path(snapshot, root, d.file)
        if path != current:
            if current is not None:
                console.print()
            console.print(Text(path, style="bold"))
            current = path
        where = ":".join(str(x) for x in (path, d.line, d.column) if x is not None)
        subject = f"{d.kind} {d.name}: " if d.kind and d.name else ""
        hint = (f" (hint: {d.hint})", "dim") if d.hint else ""
        console.print(
            Text.assemble(
                f"{where}: ",
                (d.severity, _STYLE[d.severity]),
                f": {subject}{d.message} ",
                (f"[{d.code}]", "dim"),
                hint,
            )
        )
    if diagnostics:
        console.print()
    commit = f" at {snapshot.commit[:12]}" if snapshot.commit else ""
    mark = ("✗", "bold red") if any(d.is_error for d in diagnostics) else ("✓", "bold green")
    console.print(Text.assemble(mark, f" {root}{commit}: {_summary(snapshot, diagnostics)}"))


def render_ignored(console: Console, snapshot: Snapshot, root: str) -> None:
    """One ``note:`` line per document (or file) the loader left alone."""
    for item in ignored_documents(snapshot.source):
        where = ":".join(
            str(x) for x in (display_path(snapshot, root, item.file), item.line) if x is not None
        )
        what = (
            f"ignored file ({item.reason})"
            if item.reason
            else f"ignored document kind {item.kind or '(none)'} "
            f"apiVersion {item.api_version or '(none)'}"
        )
        console.print(Text.assemble(f"{where}: ", ("note", "dim"), f": {what}"))


def report(
    snapshot: Snapshot, root: str, diagnostics: list[Diagnostic], against: str | None
) -> dict[str, Any]:
    """The JSON document of ``-o json``."""
    errors = sum(d.is_error for d in diagnostics)
    entries = []
    for d in diagnostics:
        entry = d.to_dict()
        entry["display_path"] = display_path(snapshot, root, d.file)
        entries.append(entry)
    return {
        "format": JSON_FORMAT_VERSION,
        "target": root,
        "commit": snapshot.commit,
        "against": against,
        "valid": errors == 0,
        "summary": {
            "definitions": len(snapshot.definitions),
            "errors": errors,
            "warnings": len(diagnostics) - errors,
        },
        "diagnostics": entries,
    }


def _groups(snapshot: Snapshot) -> set[str]:
    return {d.name for d in snapshot.definitions if d.kind == "Group"}


def deletions(
    path: str, snapshot: Snapshot, rev: str | None, against: str, allow: tuple[str, ...]
) -> list[Diagnostic]:
    """Diagnostics for the Groups defined at ``against`` that ``snapshot`` lacks."""
    with open_repo(path) as repo:
        if against == "HEAD" and not has_commits(repo):
            return []  # an unborn HEAD defines nothing
        message = resolve_commit(repo, rev).message if rev is not None else b""
    allowed = AllowDelete.of(allow) | AllowDelete.from_message(message.decode("utf-8", "replace"))
    return deletion_diagnostics(
        _groups(load_commit(path, against)),
        _groups(snapshot),
        None,
        allowed,
        unknown=Severity.ERROR if rev is not None else Severity.WARNING,
    )


def check(
    path: str, rev: str | None, against: str | None, allow: tuple[str, ...] = ()
) -> tuple[Snapshot, list[Diagnostic]]:
    """Load and validate; raises :class:`RepoError` for usage problems."""
    if not os.path.exists(path):
        raise RepoError(f"{path}: no such file or directory")
    history: History | None = None
    if rev is not None:
        snapshot = load_commit(path, rev)
        history = history_through(path, against) if against else history_before(path, rev)
    else:
        snapshot = load_worktree(path)
        if against is not None:
            history = history_through(path, against)
    diagnostics = validate_snapshot(snapshot, history=history)
    if against is not None:
        diagnostics += deletions(path, snapshot, rev, against, allow)
    return snapshot, diagnostics


@click.command("validate")
@click.argument("path", default=".", required=False)
@click.option("--rev", metavar="REV", help="Validate this commit (PATH is the Git repo).")
@click.option(
    "--against",
    metavar="REV",
    help="Check immutability against REV and its first-parent history, "
    "and check the Groups deleted since REV (described above).",
)
@click.option(
    "--allow-delete",
    "allow_delete",
    metavar="GROUP",
    multiple=True,
    help="Allow deleting GROUP (repeatable, or comma separated; '*' allows every "
    "deletion, including removing every Group). Needs --against.",
)
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Also note every ignored document (text output)."
)
@click.pass_context
def validate(
    ctx: click.Context,
    path: str,
    rev: str | None,
    against: str | None,
    allow_delete: tuple[str, ...],
    output: str,
    verbose: bool = False,
) -> None:
    """Validate the config repo at PATH (a work tree, or with --rev a Git commit).

    With --rev, every ConfigSet is also checked against the ConfigSets of REV's
    earlier first-parent commits: a name@version never changes content.

    With --against, Groups defined at that REV and missing now are deletions.
    The Center refuses a commit that deletes a Group with enrolled nodes, or
    every Group, unless the commit message ends with a trailer such as
    "Konorkestra-Allow-Delete: web, db" ('*' for everything). Offline there are
    no node counts, so: removing every Group is an error unless '*' is allowed;
    deleting a Group is an error for a commit (--rev, whose trailers count) and
    a warning for a work tree. --allow-delete allows by hand.

    \b
    Examples:
      konorctl validate                        # the work tree here
      konorctl validate examples/config-repo -o json
      konorctl validate /srv/config.git --rev main
      konorctl validate . --against origin/main
    """
    if allow_delete and against is None:
        click.echo("konorctl validate: error: --allow-delete needs --against", err=True)
        ctx.exit(2)
    try:
        snapshot, diagnostics = check(path, rev, against, allow_delete)
    except RepoError as exc:
        click.echo(f"konorctl validate: error: {exc}", err=True)
        ctx.exit(2)
    if output == "json":
        click.echo(json.dumps(report(snapshot, path, diagnostics, against), indent=2))
    else:
        console = Console(highlight=False, soft_wrap=True)
        if verbose:
            render_ignored(console, snapshot, path)
        render_text(console, snapshot, path, diagnostics)
    ctx.exit(1 if any(d.is_error for d in diagnostics) else 0)
