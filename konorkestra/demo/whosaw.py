"""Who saw which Release: the Center's record of each app process, as the demo shows it.

Example::

    witness = Witness(center, "checkout", nodes)
    witness.observe()                        # GET /v1/nodes/{id} for each node
    witness.saw("node-3", 4242)              # {"checkout-2-…": "applied", "checkout-3-…": "failed"}
    print(witness.table({bad: "bad"}))       # node | pid | app | one column per Release

Invariants:

* Only what the Center says is recorded: for every process of the Group, the
  Release its agent last handed it (``read`` when the app asked with
  ``get_config``, ``delivered`` when a watch callback got it) and the process's
  last ack (``applied`` / ``failed``), as ``GET /v1/nodes/{id}`` shows them.
* That API keeps only the newest delivery and ack of a process, so the record
  is the union of every observation: a step observes when its state has
  settled, and while a short-lived state matters (a failed reload followed by
  its rollback) it observes every 0.05 s. An ack status never turns back into
  ``delivered``.
* A process is ``(node, pid, start time)``; rows are in node order, then pid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape

from konorkestra.demo.fleet import DemoNode
from konorkestra.demo.stack import CenterHandle
from konorkestra.demo.steps import short

RANK = {"read": 0, "delivered": 1, "applied": 2, "failed": 2}


@dataclass
class Seen:
    """One process and each Release the Center recorded for it: release -> state."""

    node: str
    pid: int
    app: str
    releases: dict[str, str] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)


class Witness:
    """Accumulates the Center's per-process record of one Group's Releases."""

    def __init__(self, center: CenterHandle, group: str, nodes: Sequence[DemoNode]) -> None:
        self.center, self.group = center, group
        self.names = {n.node_id: n.name for n in nodes}
        self.order = [n.node_id for n in nodes]
        self.seen: dict[tuple[str, int, object], Seen] = {}

    def observe(self, nodes: Sequence[str] | None = None) -> None:
        """Record what the Center shows now for ``nodes`` (ids; default: every node)."""
        for node_id in nodes or self.order:
            shown = self.center.get(f"/v1/nodes/{node_id}")
            for state in shown.get("state", []):
                if state.get("group") == self.group:
                    for proc in state.get("processes", []):
                        self._record(node_id, proc)

    def _record(self, node_id: str, proc: Mapping[str, Any]) -> None:
        key = (node_id, int(proc["pid"]), proc.get("start_time"))
        seen = self.seen.get(key)
        if seen is None:
            name = self.names.get(node_id, node_id)
            seen = self.seen[key] = Seen(name, int(proc["pid"]), proc.get("client") or "?")
        if proc.get("release"):
            state = "read" if proc.get("via") == "get" else "delivered"
            self._set(seen, str(proc["release"]), proc.get("sequence"), state)
        ack = proc.get("ack") or {}
        if ack.get("release") and ack.get("status") in ("applied", "failed"):
            self._set(seen, str(ack["release"]), None, str(ack["status"]))

    @staticmethod
    def _set(seen: Seen, release: str, sequence: object, state: str) -> None:
        old = seen.releases.get(release)
        if old is None or RANK[state] >= RANK[old]:
            seen.releases[release] = state
        if isinstance(sequence, int):
            seen.sequences[release] = sequence

    def saw(self, node: str, pid: int) -> dict[str, str]:
        """Release -> state for the process ``pid`` on the node named ``node``."""
        for seen in self.seen.values():
            if seen.node == node and seen.pid == pid:
                return dict(seen.releases)
        return {}

    def rows(self) -> list[Seen]:
        rank = {self.names.get(n, n): i for i, n in enumerate(self.order)}
        return sorted(self.seen.values(), key=lambda s: (rank.get(s.node, len(rank)), s.pid))

    def table(self, labels: Mapping[str, str], notes: Mapping[str, str]) -> list[str]:
        """Rich-markup lines: one row per process, one column per Release (by sequence).

        ``labels`` adds a word to a Release's column (``bad``), ``notes`` to a node's
        name (``canary``).
        """
        rows = self.rows()
        releases = sorted({r for s in rows for r in s.releases}, key=_sequence_of(rows))
        heads = ["node", "pid", "app"] + [
            f"{short(r)} ({labels[r]})" if r in labels else short(r) for r in releases
        ]
        body = [
            [f"{s.node} ({notes[s.node]})" if s.node in notes else s.node, str(s.pid), s.app]
            + [s.releases.get(r, "-") for r in releases]
            for s in rows
        ]
        widths = [max(len(line[i]) for line in [heads, *body]) for i in range(len(heads))]
        out = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
        for line in body:
            cells = []
            for cell, width in zip(line, widths, strict=True):
                text = escape(cell.ljust(width))
                cells.append(f"[red]{text}[/]" if cell == "failed" else text)
            out.append("  ".join(cells).rstrip())
        return out


def _sequence_of(rows: Sequence[Seen]) -> Any:
    known = {r: q for s in rows for r, q in s.sequences.items()}

    def key(release: str) -> tuple[int, str]:
        if release in known:
            return (known[release], release)
        tail = short(release).rsplit("-", 1)[-1]
        return (int(tail) if tail.isdigit() else 0, release)

    return key
