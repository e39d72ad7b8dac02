"""How a plan reads: plain text for a terminal, Markdown for a pull-request comment.

Example::

    from konorkestra.cli.plan_view import render_markdown, render_text
    print("\\n".join(render_text(plan, header="plan main → WORKTREE")))
    comment = render_markdown(plan, header="`main` → `HEAD`")   # < 65,000 characters

Invariants (tested in ``tests/cli/test_plan_cmd.py``):

* **PV1** Diff lines are the semantic diff's own (``+``/``-``/``~``/``=``,
  :mod:`konorkestra.cli.diff_view`); this module decides nothing, it draws a
  :class:`~konorkestra.cli.plan_model.Plan`.
* **PV2** Within a wave, the nodes it adds are listed by name, so the same
  fleet always reads the same; the JSON keeps the engine's order.
* **PV3** Offline, every wave reads as a percentage of the Group's nodes and
  the output says the Center was not asked, and why.
* **PV4** The Markdown is at most :data:`MARKDOWN_LIMIT` characters: when the
  whole would be longer, diffs are replaced by a note from the last Group
  backwards, then the rest is cut at a line; either way it ends with a
  truncation note. Repo text never breaks out of a table cell or code fence.
"""

from __future__ import annotations

import re

from konorkestra.cli.diff_view import configset_title, file_line, summary
from konorkestra.cli.plan_model import FleetNode, GroupPlan, Plan, WavePlan
from konorkestra.repo.semdiff import GroupDiff, describe_policy
from konorkestra.repo.valuediff import SIGN

MARKDOWN_LIMIT = 65_000
"""GitHub refuses comments over 65,536 characters; stay under with room to spare."""
TRUNCATED = (
    "\n> **Truncated** to stay under 65,000 characters{what}. "
    "Run `konorctl plan` for the whole plan.\n"
)


def duration(seconds: int) -> str:
    """``1h5m``, ``30s``, ``0s`` (as Policies and ``konorctl diff`` write bakes)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)
    return text or "0s"


def diff_lines(group: GroupDiff) -> list[str]:
    """The Group's ConfigSets and their changes, as ``konorctl diff`` shows them (PV1)."""
    out: list[str] = []
    for cs in group.configsets:
        out.append(configset_title(cs))
        if cs.op == "same":
            continue
        out += ["    " + c.line() for c in cs.data]
        out += ["    " + c.line(prefix="schema") for c in cs.schema]
        out += ["    " + file_line(f) for f in cs.files]
    for change in group.policy.fields:
        out.append(f"~ Policy {change.field}: {change.old or '(none)'} → {change.new or '(none)'}")
    return out


def policy_line(gp: GroupPlan) -> str:
    """``canary: strategy canary; steps 5% bake 5m, ...; guards ...; onFailure ...; approval``."""
    if gp.policy is None:
        return "(none)"
    d = describe_policy(gp.policy)
    return (
        f"{d['name']}: strategy {d['strategy']}; steps {d['steps'] or '100%'}; "
        f"guards {d['guards']}; onFailure {d['onFailure']}; approval {d['approval']}"
    )


def _names(nodes: tuple[FleetNode, ...]) -> list[str]:
    return sorted(n.name or n.id for n in nodes)


def _processes(nodes: tuple[FleetNode, ...]) -> list[str]:
    return [
        f"{p} on {n.name or n.id}" for n in sorted(nodes, key=lambda n: n.name) for p in n.processes
    ]


def _wave_size(wave: WavePlan) -> str:
    if wave.nodes is None:
        return f"{wave.percent}% of the Group's nodes"
    return f"{len(wave.nodes)} node{'' if len(wave.nodes) == 1 else 's'}"


def _selector(wave: WavePlan) -> str:
    if not wave.selector:
        return ""
    return " on " + ",".join(f"{k}={v}" for k, v in sorted(wave.selector.items()))


def rollout_note(gp: GroupPlan) -> str:
    """PL4 in words: earliest full rollout and approval."""
    if not gp.waves:
        return "no Release: the Group is removed"
    first = " (the Group's first Release: one step)" if gp.first_release else ""
    approval = (
        f"approval required before each step after the first (konorctl rollout approve {gp.name})"
        if gp.approval_required
        else "no approval required"
    )
    note = f"earliest full rollout {duration(gp.earliest_seconds)}{first}; {approval}"
    if gp.superseding:
        note += (
            f"; supersedes the running rollout of {gp.superseding}"
            " (the nodes it reached keep the new Release)"
        )
    return note


def center_note(plan: Plan) -> str:
    if plan.online:
        return "blast radius from the Center's enrolled nodes"
    return f"offline ({plan.offline_reason}): waves as percentages only"


# -- text ------------------------------------------------------------------------------


def _text_group(gp: GroupPlan) -> list[str]:
    out = [f"{SIGN[gp.diff.op]} Group {gp.name}"]
    out += ["  " + line for line in diff_lines(gp.diff)]
    out.append(f"  Policy {policy_line(gp)}")
    for wave in gp.waves:
        line = f"  wave {wave.step + 1}: {wave.percent}%{_selector(wave)}: {_wave_size(wave)}"
        if wave.added is not None:
            line += f" (+{len(wave.added)}: {', '.join(_names(wave.added)) or 'none'})"
            procs = _processes(wave.added)
            if procs:
                line += f"; processes: {', '.join(procs)}"
        if wave.bake_seconds:
            line += f"; bake {duration(wave.bake_seconds)}"
        out.append(line)
    out.append(f"  {rollout_note(gp)}")
    return out


def render_text(plan: Plan, header: str) -> list[str]:
    """The plan as lines of plain text."""
    out = [header, center_note(plan), ""]
    for gp in plan.groups:
        out += [*_text_group(gp), ""]
    out.append(summary(plan.diff) if plan.groups else "no Release would change")
    return out


# -- markdown --------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _fence(lines: list[str]) -> str:
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _summary_row(gp: GroupPlan) -> str:
    versions = ", ".join(
        configset_title(cs).replace("ConfigSet ", "", 1).removeprefix("~ ")
        for cs in gp.diff.configsets
        if cs.op != "same"
    )
    policy = f"{gp.policy.name} ({gp.policy.strategy})" if gp.policy else "(none)"
    if not gp.waves:
        waves, time, approval = "removed", "-", "-"
    else:
        if gp.online:
            waves = " → ".join(str(len(w.nodes or ())) for w in gp.waves) + " nodes"
        else:
            waves = " → ".join(f"{w.percent}%" for w in gp.waves)
        time = duration(gp.earliest_seconds)
        approval = "**required**" if gp.approval_required else "no"
    cells = (f"`{gp.name}`", versions or "(Policy only)", policy, waves, time, approval)
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _md_waves(gp: GroupPlan) -> list[str]:
    if not gp.waves:
        return []
    if not gp.online:
        rows = ["| Wave | Step | Nodes | Bake |", "|---|---|---|---|"]
        for w in gp.waves:
            rows.append(f"| {w.step + 1} | {w.percent}%{_cell(_selector(w))} | "
                        f"{_cell(_wave_size(w))} | {duration(w.bake_seconds)} |")  # fmt: skip
        return rows
    rows = [
        f"| Wave | Step | Nodes | New on this wave | Processes watching `{gp.name}` | Bake |",
        "|---|---|---|---|---|---|",
    ]
    for w in gp.waves:
        added = w.added or ()
        cells = (
            str(w.step + 1),
            f"{w.percent}%{_selector(w)}",
            str(len(w.nodes or ())),
            ", ".join(_names(added)) or "none",
            ", ".join(_processes(added)) or "none",
            duration(w.bake_seconds),
        )
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return rows


def _md_group(gp: GroupPlan) -> tuple[str, str]:
    """The Group's section without and with its diff (``<details>``)."""
    head = [f"### {SIGN[gp.diff.op]} Group `{gp.name}`", ""]
    head.append(f"**Policy** {_cell(policy_line(gp))}")
    head += ["", *_md_waves(gp), "", f"**{rollout_note(gp)}**", ""]
    lines = diff_lines(gp.diff)
    fence = _fence(lines)
    changes = sum(len(cs.data) + len(cs.schema) + len(cs.files) for cs in gp.diff.configsets)
    details = [
        f"<details><summary>Semantic diff of {gp.name}: {changes} change"
        f"{'' if changes == 1 else 's'}</summary>",
        "",
        f"{fence}diff",
        *lines,
        fence,
        "",
        "</details>",
        "",
    ]
    return "\n".join(head) + "\n", "\n".join(details) + "\n"


def render_markdown(plan: Plan, header: str, limit: int = MARKDOWN_LIMIT) -> str:
    """PV4: a PR comment of at most ``limit`` characters."""
    counts = plan.diff.to_json()["summary"]
    top = ["## Konorkestra plan", "", header, ""]
    if not plan.groups:
        top += [f"No Release would change ({counts['unchanged']} Groups unchanged).", ""]
    else:
        top += [
            f"{len(plan.groups)} Group{'' if len(plan.groups) == 1 else 's'} would get a new "
            f"Release ({counts['added']} added, {counts['removed']} removed, "
            f"{counts['unchanged']} unchanged); {center_note(plan)}.",
            "",
            "| Group | ConfigSets | Policy | Waves | Earliest full rollout | Approval |",
            "|---|---|---|---|---|---|",
            *(_summary_row(gp) for gp in plan.groups),
            "",
        ]
    sections = [_md_group(gp) for gp in plan.groups]
    head = "\n".join(top) + "\n"
    bodies = [s[0] for s in sections]
    details = [s[1] for s in sections]
    whole = head + "".join(b + d for b, d in zip(bodies, details, strict=True))
    if len(whole) <= limit:
        return whole
    for omitted, i in enumerate(reversed(range(len(details))), start=1):
        details[i] = "_(diff omitted: see the truncation note)_\n\n"
        whole = head + "".join(b + d for b, d in zip(bodies, details, strict=True))
        if len(whole) + len(TRUNCATED) + 40 <= limit:
            return whole + TRUNCATED.format(what=f": {omitted} diff(s) omitted")
    note = TRUNCATED.format(what=": diffs omitted and the plan cut")
    cut = whole[: max(0, limit - len(note))]
    cut = cut[: cut.rfind("\n") + 1] if "\n" in cut else cut
    return cut + note
