"""How ``konorctl rollouts`` and ``konorctl rollout status`` draw a rollout (pure).

Example::

    status = center.get("/v1/rollouts/checkout")        # the API's status JSON
    Console().print(status_view(status))                  # header, waves, guards, approvals…
    click.echo(summary(status))   # "checkout-2-8a43… (seq 2): baking, step 2/2, 2/2 nodes targeted"

Invariants:

* Every function here takes the Center's status JSON (``center/rollouts/status.py``)
  and returns text or rich renderables; nothing reads the clock, the network or a
  terminal. Times left are the Center's (``bake_left_seconds``,
  ``wave_deadline_left_seconds``), as of the request.
* Steps are shown 1-based (``step 2/3``); the API's ``step`` is 0-based.
* Text that comes from people or the Center (reasons, actors, selectors) is put
  in :class:`rich.text.Text`, never read as rich markup.
* A guard in ``breach`` is red, ``pending`` yellow, ``pass`` green; phases that
  ended badly (``rolled_back``, ``aborted``, ``rolling_back``) are red.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from konorkestra.model.signals import GUARD_SIGNALS

Status = Mapping[str, Any]
"""One rollout as ``GET /v1/rollouts/{group}`` answers it."""

ENDED = {"completed": 0, "rolled_back": 1, "aborted": 1}
"""Phases in which a rollout has ended, with the exit code of ``--watch``."""

_PHASE_STYLE = {
    "waving": "cyan",
    "baking": "cyan",
    "awaiting_approval": "bold yellow",
    "paused": "bold yellow",
    "rolling_back": "bold red",
    "completed": "green",
    "rolled_back": "bold red",
    "aborted": "bold red",
}
_GUARD_STYLE = {"pass": "green", "pending": "yellow", "breach": "bold red"}
_WAVE_STYLE = {"done": "green", "current": "bold cyan", "pending": "dim"}


def duration(seconds: float | None) -> str:
    """``41s``, ``9m12s``, ``1h05m``; ``-`` for None."""
    if seconds is None:
        return "-"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def number(value: float | None) -> str:
    """A guard value or threshold: ``0``, ``0.99``, ``412.5``; ``no data`` for None."""
    return "no data" if value is None else f"{value:g}"


def when(iso: str | None) -> str:
    """An API timestamp to the second (``2026-12-02 07:18:53Z``); ``-`` for None."""
    if not iso:
        return "-"
    day, _, clock = iso.partition("T")
    return f"{day} {clock[:8]}Z" if clock else iso


def phase_text(phase: str) -> Text:
    return Text(phase.replace("_", " "), style=_PHASE_STYLE.get(phase, ""))


def step_of(status: Status) -> str:
    """``k/n`` with k 1-based."""
    return f"{int(status['step']) + 1}/{status['steps']}"


def release_of(ref: Mapping[str, Any] | None) -> str:
    return "-" if not ref else f"{ref['id']} (seq {ref['sequence']})"


def time_left(status: Status) -> str:
    """What the clock is counting for this rollout now, or ``""``."""
    phase = status["phase"]
    bake = status.get("bake_left_seconds")
    if bake is not None:
        return f"bake {duration(bake)} left" + (" when paused" if phase == "paused" else "")
    deadline = status.get("wave_deadline_left_seconds")
    if deadline is not None:
        return f"wave deadline in {duration(deadline)}"
    return ""


def summary(status: Status) -> str:
    """One line: the release, its phase and step, nodes targeted, the clock."""
    nodes = status["nodes"]
    parts = [
        f"{release_of(status['release'])}: {status['phase']}",
        f"step {step_of(status)}",
        f"{nodes['targeted']}/{nodes['enrolled']} nodes targeted",
    ]
    left = time_left(status)
    return ", ".join([*parts, left] if left else parts)


def outcome_line(status: Status) -> str | None:
    """The second line after a command: why it stopped, or where nodes are sent back."""
    rollback = status.get("rollback")
    if rollback:
        return (
            f"rollback release {release_of(rollback)} goes to every node that took "
            f"{status['release']['id']}"
        )
    if status["phase"] == "aborted":
        return "first Release of the Group: nothing to roll back to; nodes keep what they have"
    if status["phase"] == "awaiting_approval":
        return f"waiting for `konorctl rollout approve {status['group']}` before the next wave"
    return f"reason: {status['reason']}" if status.get("reason") else None


def _table(title: str | None) -> Table:
    """A compact table: a rule under the header, no outer border."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                 pad_edge=False)  # fmt: skip


# -- konorctl rollouts ----------------------------------------------------------------------


WIDE_COLUMNS = ("stable", "policy", "started", "updated")
"""The columns :func:`rollouts_table` adds with ``wide`` (``-o wide``)."""


def rollouts_table(items: Sequence[Status], *, wide: bool = False) -> Table:
    """Every Group's current rollout, one row each; narrow enough for 100 columns.
    ``wide`` adds :data:`WIDE_COLUMNS`: the stable Release the rollout started
    from (``-`` for a first Release), the Policy, and when it started and last
    changed."""
    table = _table(None)
    for name in ("group", "release", "phase", "step", "nodes", "bake left"):
        table.add_column(name, no_wrap=name != "phase")
    table.add_column("reason", overflow="fold", ratio=1)
    for name in WIDE_COLUMNS if wide else ():
        table.add_column(name, no_wrap=True)
    for s in items:
        nodes = s["nodes"]
        extra = (
            (Text(s["stable"]["id"] if s.get("stable") else "-"),
             Text(str((s.get("policy") or {}).get("name", "-"))),
             when(s.get("started_at")), when(s.get("updated_at")))
            if wide else ()
        )  # fmt: skip
        table.add_row(
            Text(s["group"]),
            Text(s["release"]["id"]),
            phase_text(s["phase"]),
            step_of(s),
            f"{nodes['targeted']}/{nodes['enrolled']}",
            duration(s.get("bake_left_seconds")),
            Text(s.get("reason") or ""),
            *extra,
        )
    return table


# -- konorctl rollout status ----------------------------------------------------------------


def _nodes(s: Status) -> str:
    nodes = s["nodes"]
    targeted = f"{nodes['targeted']} targeted with the new Release"
    if s.get("rollback"):
        targeted = f"{nodes['targeted']} took the new Release (sent the rollback)"
    return f"{nodes['enrolled']} enrolled: {targeted}, {nodes['stable']} on stable"


def _header(s: Status) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    policy = s["policy"]
    phase = phase_text(s["phase"])
    if s["phase"] == "paused" and s.get("paused_from"):
        phase.append(f" (from {s['paused_from'].replace('_', ' ')})", style="")
    if s["phase"] == "awaiting_approval":
        phase.append(f" for step {int(s['step']) + 2}/{s['steps']}", style="")
    rows: list[tuple[str, str | Text]] = [
        ("rollout", Text(f"{s['group']}: {release_of(s['release'])}")),
        ("from", Text(release_of(s["stable"]) if s.get("stable") else "nothing (first Release)")),
        (
            "policy",
            Text(
                f"{policy['name']} ({policy['strategy']}, approval {policy['approval']}, "
                f"on failure {policy['onFailure']})"
            ),
        ),
        ("phase", phase),
        ("step", step_of(s)),
        ("nodes", _nodes(s)),
    ]
    left = time_left(s)
    if left:
        rows.append(("clock", left))
    if s.get("reason"):
        rows.append(("reason", Text(s["reason"], style=_PHASE_STYLE.get(s["phase"], ""))))
    if s.get("rollback"):
        rows.append(("rollback", Text(release_of(s["rollback"]), style="bold")))
    if s.get("superseded"):
        rows.append(("superseded", Text(", ".join(s["superseded"]))))
    rows.append(("started", f"{when(s.get('started_at'))}, updated {when(s.get('updated_at'))}"))
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def _waves(s: Status) -> Table:
    table = _table("waves")
    for name in ("step", "%", "bake", "selector", "state", "nodes", "committed", "applied",
                 "failed", "stale"):  # fmt: skip
        table.add_column(name, justify="right" if name not in ("selector", "state") else "left")
    for w in s["waves"]:
        selector = ",".join(f"{k}={v}" for k, v in sorted(w.get("selector", {}).items()))
        table.add_row(
            str(int(w["step"]) + 1),
            str(w["percent"]),
            duration(w["bake_seconds"]) if w["bake_seconds"] else "-",
            Text(selector or "-"),
            Text(w["state"], style=_WAVE_STYLE.get(w["state"], "")),
            str(w["nodes"]),
            str(w["committed"]),
            str(w["applied"]),
            Text(str(w["failed"]), style="bold red" if w["failed"] else ""),
            Text(str(w["stale"]), style="yellow" if w["stale"] else ""),
        )
    return table


def _limit(signal: str, threshold: float) -> str:
    """``≤ 0.02`` for a max signal, ``≥ 0.99`` for a min one (equal never breaches)."""
    known = GUARD_SIGNALS.get(signal)
    if known is None:
        return number(threshold)
    return ("≤ " if known.comparison == "max" else "≥ ") + number(threshold)


def _guards(s: Status) -> Table | Text:
    if not s["guards"]:
        why = " (the rollout has ended)" if s["phase"] in ENDED else ""
        if s["phase"] == "paused":
            why = " (not read while paused)"
        return Text("guards: no readings" + why, style="dim")
    table = _table("guards")
    for name in ("signal", "value", "must be", "status", "detail"):
        table.add_column(name, overflow="fold")
    for g in s["guards"]:
        style = _GUARD_STYLE.get(g["status"], "")
        table.add_row(
            Text(g["signal"], style="bold red" if g["status"] == "breach" else ""),
            Text(number(g["value"]), style=style),
            _limit(g["signal"], g["threshold"]),
            Text(g["status"], style=style),
            Text(g.get("detail") or ""),
        )
    return table


def _approvals(s: Status) -> Table | Text:
    approvals = s.get("approvals") or []
    if not approvals:
        manual = s["policy"]["approval"] == "manual"
        none = "none" if s["phase"] in ENDED else "none yet"
        return Text("approvals: " + (none if manual else "not needed (approval auto)"),
                    style="dim")  # fmt: skip
    table = _table("approvals")
    for name in ("step", "by", "at", "reason"):
        table.add_column(name, overflow="fold")
    for a in approvals:
        table.add_row(str(int(a["step"]) + 1), Text(a["actor"]), when(a["at"]),
                      Text(a.get("reason") or ""))  # fmt: skip
    return table


def _history(s: Status) -> Table | None:
    history = s.get("history") or []
    if not history:
        return None
    table = _table("earlier rollouts")
    for name in ("release", "phase", "started", "updated", "reason"):
        table.add_column(name, overflow="fold", no_wrap=name in ("started", "updated"))
    for h in history:
        table.add_row(Text(h["release"]), phase_text(h["phase"]), when(h["started_at"]),
                      when(h["updated_at"]), Text(h.get("reason") or ""))  # fmt: skip
    return table


def status_view(s: Status) -> RenderableType:
    """The whole status: header, waves, guards, approvals, earlier rollouts."""
    gap = Text("")
    parts: list[RenderableType] = [_header(s), gap, _waves(s), gap, _guards(s), gap, _approvals(s)]
    history = _history(s)
    if history is not None:
        parts += [gap, history]
    return Group(*parts)
