"""One-line summaries of a rollout's status JSON (``GET /v1/rollouts/{group}``) for the demo.

Example::

    st = center.get("/v1/rollouts/checkout")
    waves_text(st)    # "5 % → 1 node (+1) done · 25 % → 2 nodes (+1) current · 100 % → ..."
    guards_text(st)   # "error_rate 0 ≤ 0.02 ✓ · failed_acks 0 ≤ 0 ✓ · ack_success_rate 1 ≥ 0.99 ✓"
    phase_text(st)    # "awaiting_approval after step 1/3"
    audit_lines(center.get("/v1/audit")["events"])   # guard.breached, rollout.rolled_back

Pure: a status dict in, text out (rich markup, values escaped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.markup import escape

from konorkestra.demo.steps import short
from konorkestra.model.signals import GUARD_SIGNALS


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) else "?"


def _nodes(n: int) -> str:
    return f"{n} node" if n == 1 else f"{n} nodes"


def waves_text(status: Mapping[str, Any]) -> str:
    """Each wave: its percent, the nodes on the new Release once it ran (its own), its state."""
    out, total = [], 0
    for w in status.get("waves", []):
        total += int(w["nodes"])
        out.append(f"{w['percent']} % → {_nodes(total)} (+{w['nodes']}) {w['state']}")
    return " · ".join(out)


def guards_text(status: Mapping[str, Any]) -> str:
    """Each guard's last reading against its threshold: ✓ pass, … pending, ✗ breach."""
    out = []
    for g in status.get("guards", []):
        signal = str(g["signal"])
        known = GUARD_SIGNALS.get(signal)
        op = "≥" if known is not None and known.comparison == "min" else "≤"
        mark = {"pass": "[green]✓[/]", "breach": "[red]✗[/]"}.get(g["status"], "…")
        if g["status"] == "breach":
            op = "<" if op == "≥" else ">"
        value = "no data" if g.get("value") is None else _num(g["value"])
        out.append(f"{escape(signal)} {value} {op} {_num(g['threshold'])} {mark}")
    return " · ".join(out) or "no guards"


def phase_text(status: Mapping[str, Any]) -> str:
    """``baking step 2/3 (1.4 s left)``, ``awaiting_approval after step 1/3``, ``completed``."""
    phase, step, steps = status["phase"], int(status["step"]) + 1, status["steps"]
    if phase == "awaiting_approval":  # "step" is the step that baked
        return f"awaiting_approval after step {step}/{steps}"
    if phase == "baking":
        return f"baking step {step}/{steps} ({_num(status.get('bake_left_seconds'))} s left)"
    if phase == "waving":
        return f"waving step {step}/{steps}"
    return str(phase)


def approvals_text(status: Mapping[str, Any]) -> str:
    """Who approved which step, with the reason."""
    return "; ".join(
        f"before step {int(a['step']) + 1} by {escape(str(a['actor']))} "
        f"({escape(repr(a.get('reason') or ''))})"
        for a in status.get("approvals", [])
    )


def audit_lines(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """``guard.breached`` and ``rollout.rolled_back`` audit events, one line each."""
    out = []
    for e in events:
        d, actor = e["details"], escape(str(e["actor"]))
        if e["action"] == "guard.breached":
            hit = [r for r in d.get("readings", []) if r.get("status") == "breach"]
            out.append(f"audit guard.breached by {actor}: {guards_text({'guards': hit})}")
        elif e["action"] == "rollout.rolled_back":
            out.append(
                f"audit rollout.rolled_back by {actor} (no operator): a new release, "
                f"{escape(short(d.get('other')))}, with the content of the last good one"
            )
    return out


def policy_text(policy_yaml: str) -> str:
    """A Policy file in one line: its steps, approval, onFailure and guards."""
    from ruamel.yaml import YAML

    spec = (YAML(typ="safe").load(policy_yaml) or {}).get("spec") or {}
    steps = " → ".join(f"{s.get('percent')} %" for s in spec.get("steps") or [])
    guards = ", ".join(str(g.get("signal")) for g in spec.get("guards") or [])
    return escape(
        f"steps {steps or '100 %'}, approval: {spec.get('approval', 'auto')}, "
        f"onFailure: {spec.get('onFailure', 'rollback')}, guards: {guards or 'none'}"
    )
