"""The demo's fleet: several nodes, each an Agent with the sample app next to it.

Example::

    nodes = join_nodes(stack, center, ["node-1", "node-2"], groups=["checkout"])
    start_apps(stack, nodes, "checkout")          # examples/apps/checkout_app.py on each
    [n.sequence("checkout") for n in nodes]        # what each agent committed: [1, 1]

Invariants:

* Each node is enrolled with its own single-use join token; tokens, joins and
  agent starts run concurrently (the Center allows a burst of joins from one
  address), and every failure is raised, not swallowed.
* A node's app is started only after its agent serves its socket and has
  committed the Group's first Release, so the app starts on a live agent.
* The app's output lines are numbered from its start; :meth:`DemoNode.lines_since`
  reads what it printed after a mark, so a step can say "printed nothing new".
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from konorkestra.demo.procs import DemoError, LogLine
from konorkestra.demo.stack import AgentHandle, AppHandle, CenterHandle, Stack


@dataclass
class DemoNode:
    """One node of the demo: its agent and (once started) its app."""

    agent: AgentHandle
    app: AppHandle | None = None

    @property
    def name(self) -> str:
        return self.agent.name

    @property
    def node_id(self) -> str:
        return self.agent.node_id

    @property
    def the_app(self) -> AppHandle:
        if self.app is None:
            raise DemoError(f"{self.name} has no app running")
        return self.app

    @property
    def pid(self) -> int:
        return self.the_app.proc.pid

    def sequence(self, group: str) -> int:
        """The sequence the agent has committed for ``group`` (0: none)."""
        return int((self.agent.committed(group) or {}).get("sequence", 0))

    def mark(self) -> int:
        """The index of the app's next output line."""
        return len(self.the_app.proc.lines)

    def lines_since(self, mark: int) -> list[LogLine]:
        self.the_app.proc.check()
        return self.the_app.proc.lines[mark:]


def join_nodes(
    stack: Stack, center: CenterHandle, names: Sequence[str], groups: Sequence[str]
) -> list[DemoNode]:
    """Enroll and start one agent per name, concurrently; wait until each serves."""
    nodes = [DemoNode(stack.agent(name)) for name in names]

    def enroll(node: DemoNode) -> None:
        node.agent.join(center, center.create_token(groups))
        node.agent.start()
        node.agent.wait_serving()

    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        for done in [pool.submit(enroll, node) for node in nodes]:
            done.result()
    return nodes


def start_apps(stack: Stack, nodes: Sequence[DemoNode], group: str, name: str) -> None:
    """Start the sample app on every node once its agent has ``group``'s first Release."""
    for node in nodes:
        node.agent.wait_committed(group, 1)
    for node in nodes:
        node.app = stack.app(node.agent, group, name=name)
    for node in nodes:
        node.the_app.proc.wait_line(r"^start ", timeout=20, what=f"{node.name}'s app to start")
