"""``konorctl plan``: what merging a change would do, Group by Group and wave by wave.

Example::

    konorctl plan --against origin/main                  # a PR's work tree
    konorctl plan /srv/config.git --rev pr-42 --against main --center https://center:7400
    konorctl plan --rev HEAD --against origin/main -o markdown > comment.md

Exit codes: 0 the plan was shown (with changes or "no Release would change"),
1 the target does not validate (its diagnostics are shown, no plan), 2 usage
or trouble (unknown revision, an ``--against`` side that does not validate),
with one line on stderr and no traceback.

Invariants:

* Validation is ``konorctl validate PATH [--rev REV] --against REV``'s
  (:func:`konorkestra.cli.validate.check`): the same diagnostics, and errors
  stop the plan.
* Both sides are loaded and resolved as the Center would
  (:func:`konorkestra.cli.diff_cmd.load_state`) and compared by
  :func:`konorkestra.repo.semdiff.diff_resolved`; the plan is built by the
  pure :func:`konorkestra.cli.plan_model.build_plan` (rules PL1-PL5) and drawn
  by :mod:`konorkestra.cli.plan_view` (PV1-PV4).
* The Center is asked only when one is configured: ``--center`` (before or
  after ``plan``), ``KONORCTL_CENTER`` or the config file's context (``konorctl
  login``; ``--context``), as every ``konorctl`` command finds it
  (:meth:`konorkestra.cli.client.Settings.resolve`):
  ``GET /v1/nodes`` (the enrolled, not revoked nodes of each Group),
  ``GET /v1/nodes/{id}`` once per node (the processes watching each Group:
  who saw what) and ``GET /v1/rollouts`` (whether a Group has a stable
  Release, rule S4). If the Center cannot be reached or refuses, the plan is
  still shown, offline, with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

import click
from rich.console import Console

from konorkestra.cli.client import CenterClient, CenterError, Settings
from konorkestra.cli.diff_cmd import DiffError, Side, load_state
from konorkestra.cli.output import connection_options
from konorkestra.cli.plan_model import FleetNode, GroupFleet, Plan, build_plan
from konorkestra.cli.plan_view import MARKDOWN_LIMIT, TRUNCATED, render_markdown, render_text
from konorkestra.cli.validate import check, report
from konorkestra.cli.validate import render_text as render_diagnostics
from konorkestra.model.types import NodeId
from konorkestra.repo import RepoError
from konorkestra.repo.semdiff import diff_resolved

JSON_FORMAT_VERSION = 1
WORKTREE = "WORKTREE"
RUNNING = frozenset({"waving", "baking", "awaiting_approval", "paused"})
"""Rollout phases a new Release supersedes (S5)."""


def process_label(proc: dict[str, Any]) -> str:
    """``checkout-app (pid 4242)``: the SDK client name, else the executable's name."""
    who = proc.get("client") or PurePosixPath(str(proc.get("exe") or "process")).name
    return f"{who} (pid {proc.get('pid')})"


def _stable(status: dict[str, Any]) -> bool:
    """S4: the Group has a Release its next rollout starts from."""
    if status.get("phase") == "completed":
        return True
    if status.get("phase") == "rolled_back" and status.get("rollback"):
        return True
    return bool(status.get("stable"))


def fetch_fleets(center: CenterClient, groups: Iterable[str]) -> dict[str, GroupFleet]:
    """Each Group's enrolled nodes, their watching processes, and first-Release-ness."""
    wanted = set(groups)
    nodes = [n for n in center.get("/v1/nodes")["nodes"] if n.get("status") != "revoked"]
    rollouts = {r["group"]: r for r in center.get("/v1/rollouts")["rollouts"]}
    members: dict[str, list[FleetNode]] = {g: [] for g in wanted}
    for node in sorted(nodes, key=lambda n: str(n["id"])):
        mine = wanted & set(node.get("groups", []))
        if not mine:
            continue
        state = {s["group"]: s for s in center.get(f"/v1/nodes/{node['id']}").get("state", [])}
        for group in sorted(mine):
            procs = (state.get(group) or {}).get("processes", [])
            members[group].append(
                FleetNode(
                    NodeId(str(node["id"])),
                    str(node.get("name") or node["id"]),
                    dict(node.get("labels") or {}),
                    tuple(process_label(p) for p in procs),
                )
            )
    out = {}
    for g in wanted:
        status = rollouts.get(g) or {}
        running = status.get("phase") in RUNNING and (status.get("release") or {}).get("id")
        first = not (status and _stable(status))
        out[g] = GroupFleet(tuple(members[g]), first, str(running) if running else None)
    return out


def make_plan(
    path: str, rev: str | None, against: str, center: str | None, token: str | None
) -> tuple[Plan, Side, Side]:
    """Load both sides, diff them, and ask the Center (if named) for the fleets."""
    before, side_a = load_state(path, against)
    after, side_b = load_state(path, rev or WORKTREE)
    diff = diff_resolved(before, after)
    settings = Settings.resolve(center=center, token=token)
    if not settings.configured:
        return build_plan(diff, {}, offline_reason="no --center given"), side_a, side_b
    if not diff.groups:
        return build_plan(diff, {}), side_a, side_b
    try:
        with CenterClient(settings) as client:
            fleets = fetch_fleets(client, (g.name for g in diff.groups))
    except CenterError as exc:
        if exc.status in (401, 403):  # reached and refused: a CI job must not pass on it
            raise
        return build_plan(diff, {}, offline_reason=exc.message), side_a, side_b
    return build_plan(diff, fleets), side_a, side_b


def _invalid(output: str, path: str, against: str, checked: Any) -> None:
    snapshot, diagnostics = checked
    if output == "json":
        doc = report(snapshot, path, diagnostics, against)
        click.echo(json.dumps({**doc, "plan": None}, indent=2))
    elif output == "markdown":
        head = "## Konorkestra plan\n\n**The change does not validate**: no plan.\n\n```\n"
        room = MARKDOWN_LIMIT - len(head) - len(TRUNCATED) - 8
        kept: list[str] = []
        for d in diagnostics:  # whole lines only, within the comment limit (PV4's, here too)
            line = f"{d.file or path}:{d.line or 0}: {d.severity}: {d.message} [{d.code}]"
            line = line.replace("```", "`\u200b``")
            room -= len(line) + 1
            if room < 0:
                break
            kept.append(line)
        more = len(diagnostics) - len(kept)
        tail = TRUNCATED.format(what=f" ({more} more diagnostics)") if more else ""
        click.echo(head + "\n".join(kept) + "\n```\n" + tail)
    else:
        render_diagnostics(Console(highlight=False, soft_wrap=True), snapshot, path, diagnostics)


@click.command("plan")
@click.argument("path", default=".", required=False)
@click.option("--rev", metavar="REV", help="Plan this commit (default: the work tree).")
@click.option("--against", metavar="REV", required=True, help="What is published (origin/main).")
@connection_options
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.pass_context
def plan(
    ctx: click.Context,
    path: str,
    rev: str | None,
    against: str,
    center: str | None,
    token: str | None,
    output: str,
) -> None:
    """Show what merging the change at PATH would release, wave by wave.

    Validates like `konorctl validate --against`, then for every Group whose
    Release would change: ConfigSet versions before → after, the semantic
    diff, the Policy that governs it, and per wave the nodes (and the processes
    watching the Group on them) the rollout engine will select, as the Center
    lists the Group's enrolled nodes now. Without a Center (no --center,
    KONORCTL_CENTER or config-file context), or when it cannot be reached,
    waves are shown as percentages; a Center that refuses the token
    (401/403) is an error, exit 2. -o markdown is a PR comment.

    Exit codes: 0 plan shown, 1 the change does not validate, 2 trouble.

    \b
    Examples:
      konorctl plan --against origin/main          # a PR's work tree
      konorctl plan /srv/config.git --rev pr-42 --against main \\
          --center https://center:7400
      konorctl plan --rev HEAD --against origin/main -o markdown
    """
    try:
        checked = check(path, rev, against)
        if any(d.is_error for d in checked[1]):
            _invalid(output, path, against, checked)
            ctx.exit(1)
        result, side_a, side_b = make_plan(path, rev, against, center, token)
    except (RepoError, DiffError, click.BadParameter, CenterError) as exc:
        message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        click.echo(f"konorctl plan: error: {message}", err=True)
        ctx.exit(2)
    header = f"{side_a.label} → {side_b.label}"
    warnings = checked[1]
    if output == "json":
        doc: dict[str, Any] = {"format": JSON_FORMAT_VERSION, "a": side_a.to_json(),
                               "b": side_b.to_json(), "valid": True}  # fmt: skip
        doc["diagnostics"] = [d.to_dict() for d in warnings]
        doc |= result.to_json()
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    elif output == "markdown":
        click.echo(render_markdown(result, f"`{side_a.label}` → `{side_b.label}`"), nl=False)
    else:
        if warnings:
            render_diagnostics(Console(highlight=False, soft_wrap=True), checked[0], path, warnings)
            click.echo()
        click.echo("\n".join(render_text(result, f"plan {header}")))
    ctx.exit(0)
