"""``konorctl diff A [B]``: what a change does to each Group's Release, offline.

Example::

    konorctl diff origin/main                    # origin/main vs. the work tree
    konorctl diff main~1 main --repo /srv/config.git
    konorctl diff origin/main HEAD -o json
    konorctl diff checkout-api@1 checkout-api@2  # two versions of a ConfigSet
    konorctl diff checkout-1-0a1b2c3d4e5f6a7b checkout-2-8c9d0e1f2a3b4c5d  # two Releases

Exit codes (like ``diff``): 0 no difference, 1 differences, 2 trouble -- a usage
error, an unknown revision, ConfigSet version or Release, a side that does not
validate, a Center that cannot be reached -- with a one-line message on stderr and no traceback.

Invariants:

* A and B are both revisions, both ``name@version`` or both Release ids
  (``<group>-<sequence>-<16 hex>``); a mix is a usage error. A revision is a sha,
  branch, tag or ``HEAD``, with ``~N``/``^N`` suffixes
  (:func:`konorkestra.repo.sources.resolve_commit`), or ``WORKTREE``: the files on disk
  at ``--repo``, committed or not (a bare repository has none). B defaults to
  ``WORKTREE``. An argument of the form ``name@12`` (or ``name@v12``) is a
  ConfigSet version; a branch spelled like one is named ``refs/heads/name@12``.
  Likewise a Release id is never read as a revision.
* Two Release ids are read from the Center (``--center``, ``--ca``,
  ``--token``, ``--context``, env and config file as every ``konorctl``
  command) and compared ConfigSet by ConfigSet, the Policy by name, digest and strategy
  (:mod:`konorkestra.cli.diff_releases`, rules RD1-RD6); ``--repo`` is unused.
* Two revisions are each loaded and resolved exactly as the Center would
  (:func:`konorkestra.repo.resolve`), then compared by
  :func:`konorkestra.repo.semdiff.diff_resolved`: only Groups whose Release
  would change are shown (rules SD1–SD12 there).
* ``name@version`` is looked up where it was first published on the
  first-parent history of ``HEAD`` (a version's content never changes), and
  only if it was never published, in the work tree.
* ``-o json`` prints one document: ``{"format": 1, "a": {"ref", "commit"},
  "b": {...}, "differs", ...}`` followed by ``groups``/``summary``/``unchanged``
  (:meth:`SemanticDiff.to_json`) for revisions, or ``configset``
  (:meth:`ConfigSetDiff.to_json`) for ConfigSet versions, or ``release``
  (:meth:`ReleaseDiff.to_json`) for Releases, whose sides also carry
  ``group``, ``sequence`` and ``digest``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import click
from rich.console import Console
from rich.text import Text

from konorkestra.cli.client import CenterError, Settings
from konorkestra.cli.diff_releases import (
    ReleaseDiffError,
    fetch_release_diff,
    is_release_id,
    render_release_diff,
    side_json,
)
from konorkestra.cli.diff_view import render_configset, render_diff
from konorkestra.cli.output import connection_options
from konorkestra.model.definitions import ConfigSet, ConfigSetSelector
from konorkestra.model.types import JsonObject
from konorkestra.repo import (
    History,
    RepoError,
    Resolved,
    ResolveError,
    Snapshot,
    history_through,
    load_commit,
    load_worktree,
    resolve,
)
from konorkestra.repo.configsets import build_configset
from konorkestra.repo.schemas import schema_diagnostics
from konorkestra.repo.semdiff import diff_configsets, diff_resolved
from konorkestra.repo.sources import has_commits, open_repo, resolve_commit

JSON_FORMAT_VERSION = 1
WORKTREE = "WORKTREE"
_CONFIGSET_REF = re.compile(r"^[a-z0-9][-a-z0-9]*@v?[0-9]+$")


class DiffError(Exception):
    """Trouble that ends ``konorctl diff`` with exit code 2 and this message."""


@dataclass(frozen=True)
class Side:
    """One side of the diff as the user named it, and the commit it resolved to."""

    ref: str
    commit: str | None

    @property
    def label(self) -> str:
        if self.commit is None:
            return f"{self.ref} (work tree)"
        return f"{self.ref} ({self.commit[:12]})"

    def to_json(self) -> JsonObject:
        return {"ref": self.ref, "commit": self.commit}


def is_configset_ref(text: str) -> bool:
    """True when ``text`` names a ConfigSet version (``name@12``/``name@v12``)."""
    return _CONFIGSET_REF.fullmatch(text) is not None


def _worktree(repo_path: str) -> Snapshot:
    with open_repo(repo_path) as repo:
        if repo.bare:
            raise DiffError(f"{repo_path} is a bare repository: it has no {WORKTREE}")
    return load_worktree(repo_path)


def load_state(repo_path: str, ref: str) -> tuple[Resolved, Side]:
    """The Groups of ``ref`` (a revision or ``WORKTREE``), resolved as the Center would."""
    if ref == WORKTREE:
        snapshot = _worktree(repo_path)
    else:
        with open_repo(repo_path) as repo:
            sha = resolve_commit(repo, ref).id.decode("ascii")
        snapshot = load_commit(repo_path, sha)
    try:
        resolved = resolve(snapshot)
    except ResolveError as exc:
        how = f"konorctl validate {repo_path}" + ("" if ref == WORKTREE else f" --rev {ref}")
        raise DiffError(
            f"{ref}: the config repo has {len(exc.diagnostics)} error(s); see `{how}`"
        ) from None
    return resolved, Side(ref, snapshot.commit)


def _build(snapshot: Snapshot, wanted: ConfigSetSelector) -> ConfigSet | None:
    for defn in snapshot.definitions:
        if defn.kind != "ConfigSet" or defn.name != wanted.name or schema_diagnostics(defn):
            continue
        if defn.value["metadata"]["version"] != wanted.version:
            continue
        built = build_configset(defn, snapshot.source).configset
        if built is None:
            raise DiffError(f"{wanted} in the work tree is not valid; see `konorctl validate`")
        return built
    return None


def _known_versions(history: History, snapshot: Snapshot | None, name: str) -> list[int]:
    versions = {int(key.partition("@")[2]) for key in history if key.partition("@")[0] == name}
    for defn in snapshot.definitions if snapshot else ():
        version = defn.value.get("metadata", {}).get("version")
        if defn.kind == "ConfigSet" and defn.name == name and isinstance(version, int):
            versions.add(version)
    return sorted(versions)


class Versions:
    """Where ConfigSet versions are looked up: HEAD's first-parent history, then the work tree.

    The history is walked once and the work tree loaded at most once, however
    many versions are looked up.
    """

    def __init__(self, repo_path: str) -> None:
        self.repo_path = repo_path
        with open_repo(repo_path) as repo:
            self.bare, born = repo.bare, has_commits(repo)
        self.history = history_through(repo_path, "HEAD") if born else History()
        self._worktree: Snapshot | None = None

    @property
    def worktree(self) -> Snapshot | None:
        if self._worktree is None and not self.bare:
            self._worktree = load_worktree(self.repo_path)
        return self._worktree

    def find(self, ref: str) -> tuple[ConfigSet, Side]:
        """``name@version`` where it was first published on HEAD, else in the work tree."""
        wanted = ConfigSetSelector.parse(ref)
        published = self.history.get(str(wanted))
        if published is not None:
            found = _build(load_commit(self.repo_path, published.commit), wanted)
            if found is not None:
                return found, Side(ref, published.commit)
        worktree = self.worktree
        found = _build(worktree, wanted) if worktree is not None else None
        if found is not None:
            return found, Side(ref, None)
        known = _known_versions(self.history, worktree, wanted.name)
        where = "HEAD's history" + ("" if self.bare else " or the work tree")
        if not known:
            raise DiffError(f"{ref}: no ConfigSet named {wanted.name!r} in {where}")
        versions = ", ".join(str(v) for v in known)
        raise DiffError(f"{ref}: unknown ConfigSet version (versions in {where}: {versions})")


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def diff_revisions(repo_path: str, a: str, b: str, output: str) -> bool:
    """Print the semantic diff of two revisions; True when they differ."""
    before, side_a = load_state(repo_path, a)
    after, side_b = load_state(repo_path, b)
    diff = diff_resolved(before, after)
    if output == "json":
        doc = {"format": JSON_FORMAT_VERSION, "a": side_a.to_json(), "b": side_b.to_json()}
        doc |= {"differs": diff.changed, **diff.to_json()}
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        render_diff(_console(), diff, header=f"diff {side_a.label} → {side_b.label}")
    return diff.changed


def diff_versions(repo_path: str, a: str, b: str, output: str) -> bool:
    """Print the diff of two ConfigSet versions; True when their content differs."""
    versions = Versions(repo_path)
    old, side_a = versions.find(a)
    new, side_b = versions.find(b)
    diff = diff_configsets(old, new)
    if output == "json":
        doc = {"format": JSON_FORMAT_VERSION, "a": side_a.to_json(), "b": side_b.to_json()}
        doc |= {"differs": diff.content_changed, "configset": diff.to_json()}
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return diff.content_changed
    console = _console()
    console.print(Text(f"diff {side_a.label} → {side_b.label}", style="bold"))
    console.print()
    render_configset(console, diff)
    if old.name != new.name:
        console.print(Text(f"(two ConfigSets compared: {old.name} and {new.name})"))
    return diff.content_changed


def diff_release_ids(a: str, b: str, output: str, center: str | None, token: str | None) -> bool:
    """Print the diff of two Releases read from the Center; True when their content differs."""
    diff = fetch_release_diff(Settings.resolve(center=center, token=token), a, b)
    if output == "json":
        doc = {"format": JSON_FORMAT_VERSION, "a": side_json(diff.old), "b": side_json(diff.new)}
        doc |= {"differs": diff.changed, "release": diff.to_json()}
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        render_release_diff(_console(), diff)
    return diff.changed


def _kind(ref: str) -> str:
    if is_release_id(ref):
        return "Release"
    return "ConfigSet version" if is_configset_ref(ref) else "revision"


def _mixed(a: str, b: str) -> str:
    """Why A and B cannot be compared (they are of two kinds)."""
    if "Release" not in (_kind(a), _kind(b)):
        return (
            f"compare two revisions or two ConfigSet versions (name@version), not {a!r} with {b!r}"
        )
    return (
        "compare two Release ids, two revisions or two ConfigSet versions "
        f"(name@version), not a {_kind(a)} ({a!r}) with a {_kind(b)} ({b!r})"
    )


@click.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="[B]", default=WORKTREE, required=False)
@click.option(
    "--repo",
    "repo_path",
    default=".",
    show_default=True,
    metavar="PATH",
    help="The Git repository (bare or not) holding the config repo.",
)
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@connection_options
@click.pass_context
def diff(
    ctx: click.Context,
    a: str,
    b: str,
    repo_path: str,
    output: str,
    center: str | None,
    token: str | None,
) -> None:
    """Show what changes from A to B, Group by Group: the semantic diff.

    A and B are Git revisions (sha, branch, tag, HEAD~1, or WORKTREE for the
    files on disk, committed or not; B defaults to WORKTREE), two ConfigSet
    versions written name@version, or two Release ids (group-sequence-16hex)
    read from the Center (--center, --token, --ca, --context, before or after
    `diff`, as for every command).

    For revisions, every Group whose Release would change is shown: its
    ConfigSet versions before → after, each changed key of their data as
    "+ /path: value", "- /path: value" or "~ /path: old → new" (long values
    elided), raw files by digest and size, and its Policy (fields that
    change). For ConfigSet versions, the data, schema and files of the two.
    For Releases, each ConfigSet's versions and data as above, and the Policy
    by name, digest and strategy (all the Center serves of it).

    \b
    Examples:
      konorctl diff origin/main              # a PR: published vs. work tree
      konorctl diff main~1 main --repo /srv/config.git -o json
      konorctl diff checkout-api@1 checkout-api@2
      konorctl diff checkout-1-0a1b2c3d4e5f6a7b checkout-2-8c9d0e1f2a3b4c5d

    Exit codes: 0 no difference, 1 differences, 2 trouble (unknown revision,
    ConfigSet version or Release, a side that does not validate, a Center that
    cannot be reached, usage).
    """
    if _kind(a) != _kind(b):
        click.echo(f"konorctl diff: error: {_mixed(a, b)}", err=True)
        ctx.exit(2)
    try:
        if is_release_id(a):
            differs = diff_release_ids(a, b, output, center, token)
        elif is_configset_ref(a):
            differs = diff_versions(repo_path, a, b, output)
        else:
            differs = diff_revisions(repo_path, a, b, output)
    except (DiffError, RepoError, ReleaseDiffError, CenterError) as exc:
        click.echo(f"konorctl diff: error: {exc}", err=True)
        ctx.exit(2)
    ctx.exit(1 if differs else 0)
