"""``konorctl plan``: the pure plan (PL1-PL5), its drawing (PV1-PV4) and the command.

The slow test at the end is issue 15's first "Done when": a real Center, ten
enrolled agents, a PR changing two ConfigSets in two Groups, the Markdown
against a golden file, then the merge and the rollout engine's waves against
the nodes the plan named. Set ``UPDATE_GOLDEN=1`` to rewrite the golden file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from konorkestra.cli.konorctl import cli
from konorkestra.cli.plan_model import FleetNode, GroupFleet, build_plan
from konorkestra.cli.plan_view import MARKDOWN_LIMIT, render_markdown, render_text
from konorkestra.demo import AgentHandle, CenterHandle, Stack
from konorkestra.demo.gitrepo import git
from konorkestra.demo.procs import DemoError, wait_until
from konorkestra.demo.stack import Grant
from konorkestra.model.definitions import ConfigSet, Policy, Step
from konorkestra.model.types import ConfigSetName, GroupName, NodeId, PolicyName
from konorkestra.repo.semdiff import GroupDiff, SemanticDiff, diff_configsets, diff_policies
from konorkestra.rollout import Node, plan
from tests.cli.planrepo import normalise, open_pr, pr_edits, seeded

NO_CONFIG = "/nonexistent/konorctl.yaml"
"""A konorctl config file that is not there: no context names a Center."""

CANARY = Policy(
    PolicyName("canary"),
    "canary",
    (Step(10, 60), Step(50, 120), Step(100)),
    approval="manual",
)


def group_diff(name: str, keys: int = 1, policy: Policy = CANARY) -> GroupDiff:
    old = ConfigSet(ConfigSetName(f"{name}-cs"), 1, {f"k{i}": i for i in range(keys)})
    new = ConfigSet(ConfigSetName(f"{name}-cs"), 2, {f"k{i}": i + 1 for i in range(keys)})
    return GroupDiff(
        GroupName(name), "change", (diff_configsets(old, new),), diff_policies(policy, policy)
    )


def fleet(count: int = 10, *, first: bool = False) -> GroupFleet:
    nodes = tuple(
        FleetNode(NodeId(f"id-{i:02d}"), f"node-{i:02d}", {}, ("app (pid 1)",) if i == 3 else ())
        for i in range(count)
    )
    return GroupFleet(nodes, first_release=first)


def run(*args: str) -> Result:
    return CliRunner().invoke(
        cli, ["plan", *args], env={"KONORCTL_CENTER": None, "KONORCTL_CONFIG": NO_CONFIG}
    )


# -- the pure plan ---------------------------------------------------------------------


def test_PL2_waves_are_the_rollout_engines() -> None:
    diff = SemanticDiff((group_diff("web"),), ())
    [web] = build_plan(diff, {"web": fleet()}).groups
    nodes = [Node(NodeId(f"id-{i:02d}")) for i in range(10)]
    engine = plan(GroupName("web"), nodes, CANARY.steps)
    assert [tuple(n.id for n in w.nodes or ()) for w in web.waves] == [w.nodes for w in engine]
    assert [len(w.added or ()) for w in web.waves] == [1, 4, 5]
    assert web.earliest_seconds == 180 and web.approval_required


def test_PL2_first_release_is_one_step_without_approval() -> None:
    [web] = build_plan(SemanticDiff((group_diff("web"),), ()), {"web": fleet(first=True)}).groups
    assert [(w.percent, len(w.nodes or ())) for w in web.waves] == [(100, 10)]
    assert web.first_release and not web.approval_required and web.earliest_seconds == 0


def test_PL3_offline_waves_are_percentages() -> None:
    result = build_plan(SemanticDiff((group_diff("web"),), ()), {}, offline_reason="no --center")
    [web] = result.groups
    assert [(w.percent, w.nodes) for w in web.waves] == [(10, None), (50, None), (100, None)]
    text = "\n".join(render_text(result, "plan a → b"))
    assert "offline (no --center): waves as percentages only" in text
    assert "wave 1: 10%: 10% of the Group's nodes; bake 1m" in text
    markdown = render_markdown(result, "`a` → `b`")
    assert "| `web` | web-cs 1 → 2 | canary (canary) | 10% → 50% → 100% | 3m | **required** |" in (
        markdown
    )


def test_PL5_a_removed_group_gets_no_waves() -> None:
    gone = GroupDiff(
        GroupName("old"),
        "remove",
        (diff_configsets(ConfigSet(ConfigSetName("cs"), 1, {"a": 1}), None),),
        diff_policies(CANARY, None),
    )
    [old] = build_plan(SemanticDiff((gone,), ()), {"old": fleet()}).groups
    assert old.waves == () and not old.approval_required
    assert "no Release: the Group is removed" in "\n".join(render_text(build_plan(
        SemanticDiff((gone,), ()), {"old": fleet()}), "h"))  # fmt: skip


def test_PL6_a_running_rollout_is_named_as_superseded() -> None:
    running = GroupFleet(fleet().nodes, first_release=False, running="web-7-abc")
    [web] = build_plan(SemanticDiff((group_diff("web"),), ()), {"web": running}).groups
    assert web.superseding == "web-7-abc" and web.to_json()["superseding"] == "web-7-abc"
    assert "supersedes the running rollout of web-7-abc" in render_markdown(
        build_plan(SemanticDiff((group_diff("web"),), ()), {"web": running}), "h"
    )


def test_PV2_a_wave_lists_its_new_nodes_by_name_with_their_processes() -> None:
    result = build_plan(SemanticDiff((group_diff("web"),), ()), {"web": fleet()})
    markdown = render_markdown(result, "h")
    [web] = result.groups
    for wave in web.waves:
        names = ", ".join(sorted(n.name for n in wave.added or ()))
        assert f"| {wave.step + 1} | {wave.percent}% | {len(wave.nodes or ())} | {names} |" in (
            markdown
        )
    assert "app (pid 1) on node-03" in markdown


def test_PV4_markdown_drops_diffs_to_stay_under_the_limit() -> None:
    groups = tuple(group_diff(f"g{i}", keys=1500) for i in range(3))
    result = build_plan(SemanticDiff(groups, ()), {g.name: fleet() for g in groups})
    whole = render_markdown(result, "h", limit=10**9)
    assert len(whole) > MARKDOWN_LIMIT
    cut = render_markdown(result, "h")
    assert len(cut) <= MARKDOWN_LIMIT
    assert cut.rstrip().endswith("Run `konorctl plan` for the whole plan.")
    assert "| `g2` |" in cut and "### ~ Group `g2`" in cut  # the summary and sections stay
    assert "~ /k0: 0 → 1" in cut  # the first diff still fits


def test_PV4_markdown_is_cut_at_a_line_when_even_the_summary_is_too_long() -> None:
    groups = tuple(group_diff(f"g{i}") for i in range(40))
    result = build_plan(SemanticDiff(groups, ()), {g.name: fleet() for g in groups})
    cut = render_markdown(result, "h", limit=2000)
    assert len(cut) <= 2000 and "**Truncated**" in cut


# -- the command on a real Git repo ----------------------------------------------------


@pytest.fixture
def pr_repo(tmp_path: Path) -> Path:
    repo = seeded(tmp_path)
    open_pr(repo)
    return repo.work


def test_PV4_the_invalid_changes_markdown_stays_under_the_limit_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from types import SimpleNamespace

    from konorkestra.cli.plan_cmd import _invalid

    bad = [SimpleNamespace(file=f"configsets/c{i}.yaml", line=i, severity="error",
                           message="x" * 200, code="data-schema") for i in range(1000)]  # fmt: skip
    _invalid("markdown", ".", "origin/main", (None, bad))
    out = capsys.readouterr().out
    assert len(out) <= MARKDOWN_LIMIT and "**Truncated**" in out and "more diagnostics" in out
    assert out.count("```") == 2  # the fence is closed


def test_offline_plan_of_a_pr(pr_repo: Path) -> None:
    result = run(str(pr_repo), "--rev", "pr", "--against", "origin/main", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [g["group"] for g in doc["groups"]] == ["checkout", "payments"]
    assert doc["center"] == {"online": False, "reason": "no --center given"}
    checkout = doc["groups"][0]
    assert [w["percent"] for w in checkout["waves"]] == [10, 50, 100]
    assert checkout["approval_required"] and checkout["earliest_full_rollout_seconds"] == 2
    assert doc["groups"][1]["waves"][0]["nodes"] is None


def test_unreachable_center_still_plans_offline(pr_repo: Path) -> None:
    result = run(str(pr_repo), "--rev", "pr", "--against", "origin/main",
                 "--center", "http://127.0.0.1:1")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "offline (cannot connect to the Center at http://127.0.0.1:1" in result.output


def test_no_release_would_change(pr_repo: Path) -> None:
    for output in ("text", "markdown"):
        result = run(str(pr_repo), "--rev", "origin/main", "--against", "origin/main", "-o", output)
        assert result.exit_code == 0 and "o Release would change" in result.output


def test_invalid_change_exits_1_with_diagnostics_and_no_plan(pr_repo: Path) -> None:
    (pr_repo / "groups/payments.yaml").write_text("kind: Group\n")
    result = run(str(pr_repo), "--against", "origin/main")
    assert result.exit_code == 1
    assert "error" in result.output and "wave" not in result.output


def test_invalid_change_as_json_is_validates_document_without_a_plan(pr_repo: Path) -> None:
    (pr_repo / "groups/payments.yaml").write_text("kind: Group\n")
    result = run(str(pr_repo), "--against", "origin/main", "-o", "json")
    doc = json.loads(result.output)
    assert result.exit_code == 1 and doc["valid"] is False and doc["plan"] is None
    assert doc["summary"]["errors"] >= 1


def test_unknown_revision_exits_2_with_one_line(pr_repo: Path) -> None:
    result = run(str(pr_repo), "--against", "no-such-branch")
    assert result.exit_code == 2
    assert result.output.startswith("konorctl plan: error:") and result.output.count("\n") == 1


def test_work_tree_plan_matches_the_commit(tmp_path: Path) -> None:
    repo = seeded(tmp_path)
    pr_edits(repo)  # uncommitted
    result = run(str(repo.work), "--against", "origin/main")
    assert result.exit_code == 0, result.output
    assert "~ /timeout_ms: 400 → 650" in result.output
    assert "~ /retry/attempts: 3 → 5" in result.output
    assert "2 Groups changed, 0 added, 0 removed, 0 unchanged" in result.output


GOLDEN = Path(__file__).parent / "golden" / "plan.md"


def update_golden() -> bool:
    return os.environ.get("UPDATE_GOLDEN") == "1"


# -- issue 15's "Done when": a real Center, ten agents, a PR, the merge ------------------

NODES = 10
GROUPS = ("checkout", "payments")
WAIT = 60.0


def order(group: str, ids: list[str]) -> list[str]:
    """Rule W2 written out here, independently of the engine: sha256 of ``group NUL id``."""
    return sorted(ids, key=lambda i: hashlib.sha256(f"{group}\0{i}".encode()).hexdigest())


@pytest.mark.slow
def test_plan_names_the_nodes_the_rollout_then_selects(tmp_path: Path) -> None:
    with Stack(tmp_path) as stack:
        repo = seeded(tmp_path)
        center = stack.center(repo.bare)
        center.wait_commit(repo.head())
        agents = enroll(center, [stack.agent(f"node-{i:02d}") for i in range(NODES)])
        for group in GROUPS:
            settle(center, group, agents)
        by_id = {a.node_id: a for a in agents}
        canary = by_id[order("checkout", list(by_id))[0]]
        app = stack.app(canary, "checkout", name="checkout-app")
        app.proc.wait_line(r"^start ", timeout=WAIT)
        wait_until(lambda: watching(center, canary, "checkout"), timeout=WAIT,
                   what="the app in who-saw-what", watch=[center.proc, canary.proc])  # fmt: skip

        sha = open_pr(repo)
        args = (str(repo.work), "--rev", "pr", "--against", "origin/main")
        markdown = center.konorctl("plan", *args, "-o", "markdown").stdout
        text = center.konorctl("plan", *args).stdout
        assert f"wave 1: 10%: 1 node (+1: {canary.name}); processes: checkout-app (pid " in text
        doc = json.loads(center.konorctl("plan", *args, "-o", "json").stdout)
        # A Center that refuses the token is trouble (exit 2), never a quiet offline plan.
        refused = center.konorctl("plan", *args, "--token", "not-a-token", check=False)
        assert refused.returncode == 2 and "unauthenticated" in refused.stderr, refused.stderr

        # The plan's waves are rule W2's order (computed here), and name the app.
        planned = {g["group"]: [[n["id"] for n in w["added"]] for w in g["waves"]]
                   for g in doc["groups"]}  # fmt: skip
        want = order("checkout", list(by_id))
        assert planned["checkout"] == [want[:1], want[1:5], want[5:]]
        assert sorted(planned["payments"][0]) == sorted(by_id)
        assert doc["groups"][0]["waves"][0]["added"][0]["processes"][0].startswith("checkout-app")
        assert len(markdown) < 65_000
        for i, wave in enumerate(planned["checkout"]):  # the real names, before normalising
            names = ", ".join(sorted(by_id[n].name for n in wave))
            assert (
                f"| {i + 1} | {(10, 50, 100)[i]}% | {len(want[: (1, 5, 10)[i]])} | {names} |"
                in (markdown)
            )
        if update_golden():
            GOLDEN.parent.mkdir(exist_ok=True)
            GOLDEN.write_text(normalise(markdown))
        assert normalise(markdown) == GOLDEN.read_text()

        # Merge: the rollout engine selects exactly the planned nodes, wave by wave.
        git(repo.work, "checkout", "--quiet", "main")
        git(repo.work, "merge", "--quiet", "--ff-only", "pr")
        repo.push()
        commit = wait_until(lambda: (c := center.wait_commit(sha, timeout=WAIT)).get("releases")
                            and c, timeout=WAIT, what="the PR's Releases")  # fmt: skip
        releases = {r["group"]: r["id"] for r in commit["releases"]}
        assert set(releases) == set(GROUPS)
        drive(center, "checkout", releases["checkout"])
        drive(center, "payments", releases["payments"])
        for group in GROUPS:
            started = [e["details"] for e in audit(center) if e["action"] == "wave.started"
                       and e["details"].get("release") == releases[group]]  # fmt: skip
            assert [sorted(d["nodes"]) for d in started] == [sorted(w) for w in planned[group]]
            assert [d["step"] for d in started] == list(range(len(planned[group])))


def enroll(center: CenterHandle, agents: list[AgentHandle]) -> list[AgentHandle]:
    """Join every agent to both Groups (single-use tokens through the API) and start it."""
    for agent in agents:
        resp = center.http.post(
            "/v1/join-tokens", json={"groups": list(GROUPS), "ttl_seconds": 900},
            headers={"Authorization": f"Bearer {center.admin_token}"},
        )  # fmt: skip
        body = resp.raise_for_status().json()
        agent.join(center, Grant(body["token"], body["ca_pin"], GROUPS, ""))
        agent.start()
    return agents


def watching(center: CenterHandle, agent: AgentHandle, group: str) -> list[Any]:
    """The processes ``GET /v1/nodes/{id}`` lists as watching ``group`` on ``agent``."""
    state = center.get(f"/v1/nodes/{agent.node_id}").get("state", [])
    return [p for g in state if g.get("group") == group for p in g.get("processes", [])]


def status(center: CenterHandle, group: str) -> dict[str, Any] | None:
    try:
        return center.get(f"/v1/rollouts/{group}")  # type: ignore[no-any-return]
    except DemoError:
        return None  # no rollout yet


def settle(center: CenterHandle, group: str, agents: list[AgentHandle]) -> None:
    """The Group's latest Release rolled out and committed by every agent."""
    newest = max(r["sequence"] for r in center.get("/v1/releases", group=group)["releases"])
    wait_until(lambda: (s := status(center, group)) and s["phase"] == "completed"
               and s["release"]["sequence"] == newest, timeout=WAIT,
               what=f"{group}'s seed rollout")  # fmt: skip
    for agent in agents:
        agent.wait_committed(group, newest, timeout=WAIT)


def drive(center: CenterHandle, group: str, release: str) -> None:
    """Approve each wave of ``release`` until its rollout completes (fails on any other end)."""

    def moved() -> dict[str, Any] | None:
        s = status(center, group)
        if s is None or s["release"]["id"] != release:
            return None
        return s if s["phase"] in ("awaiting_approval", "completed", "rolled_back",
                                   "aborted") else None  # fmt: skip

    while (s := wait_until(moved, timeout=WAIT, what=f"{group}'s rollout to move"))["phase"] != (
        "completed"
    ):
        assert s["phase"] == "awaiting_approval", s
        center.konorctl("rollout", "approve", group, "--reason", "plan e2e")


def audit(center: CenterHandle) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        page = center.get("/v1/audit", after=after, limit=5000)
        events, after = events + page["events"], page["next"]
    return events
