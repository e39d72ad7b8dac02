"""Three Center replicas on one throwaway PostgreSQL, with real agents on each.

Real processes: three ``konorkestra center --db postgresql://...`` sharing one
database and one trust root (the second and third data directories are copies
of the first, made after its first start: same signing keys, CA and join-token
key), and ``konorkestra agent run`` processes, each joined to one replica. A
push goes through ``git push`` (every replica watches the bare repo; only the
ingest leader ingests); a revocation through the admin API of one replica.
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.test_agent_stream import StreamReader
from tests.helpers.agents import TRUST_DOMAIN, AgentProcess, CenterAt
from tests.helpers.center_proc import CenterProcess, konorctl
from tests.helpers.configrepo import payments_common, seeded
from tests.helpers.git import WorkRepo
from tests.helpers.poll import wait_for

pytestmark = pytest.mark.postgresql
GROUP = "payments"  # policy all-at-once: a Release reaches every node at the first decision
WAVES = "waves"  # a canary of three waves without bakes: one node, two, then all three
WAVES_FILES = {
    "policies/stepwise.yaml": """\
apiVersion: konorkestra.io/v1
kind: Policy
metadata: {name: stepwise}
spec:
  strategy: canary
  steps:
    - {percent: 33, bake: 0s}
    - {percent: 66, bake: 0s}
    - {percent: 100}
  onFailure: pause
""",
    "groups/waves.yaml": """\
apiVersion: konorkestra.io/v1
kind: Group
metadata: {name: waves}
spec:
  configSets: [waves]
  policy: stepwise
""",
}


def waves_configset(version: int) -> str:
    return f"""\
apiVersion: konorkestra.io/v1
kind: ConfigSet
metadata: {{name: waves, version: {version}}}
spec:
  data: {{step: {version}}}
"""


class Replica(CenterProcess):
    """One ``konorkestra center`` replica on the shared database."""

    @property
    def pin(self) -> str:
        return re.findall(r"CA pin: (sha256:[0-9a-f]+)", self.output())[-1]

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(15)

    def leads_ingest(self) -> bool:
        resp = self.request("POST", "/v1/hooks/git", json={})
        assert resp.status_code == 202, resp.text
        return bool(resp.json()["ingest"]["leader"])


@dataclass
class World:
    replicas: list[Replica]
    agents: list[AgentProcess]
    work: WorkRepo
    db: str
    """libpq URL of the shared database (for counting rows)."""

    def query(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db) as conn:
            return conn.execute(sql.encode(), args).fetchall()  # type: ignore[arg-type]

    def latest(self, group: str = GROUP) -> dict[str, Any]:
        live = next(r for r in self.replicas if r.proc is not None and r.proc.poll() is None)
        releases = live.get("/v1/releases", params={"group": group, "limit": 1000})["releases"]
        return dict(max(releases, key=lambda r: r["sequence"]))


def _copy_data(source: Path, target: Path) -> None:
    """What replicas share: keys, trust root, CA, join-token key, admin token (not the URL)."""
    skip = shutil.ignore_patterns("center.url", "center.db*", "mirror.git")
    shutil.copytree(source, target, ignore=skip)


@pytest.fixture
def world(tmp_path: Path, postgres_url: str) -> Iterator[World]:
    bare, work = seeded(tmp_path, push=False)
    for rel, text in {**WAVES_FILES, "configsets/waves.yaml": waves_configset(1)}.items():
        work.write(rel, text)
    work.commit("a Group rolled out in waves")
    work.push()
    db = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    args = ("--db", db, "--trust-domain", TRUST_DOMAIN, "--log-level", "info")
    first = Replica(repo=bare, data=tmp_path / "c0", args=args)
    replicas = [first]
    agents: list[AgentProcess] = []
    try:
        first.start()
        first.wait_commit(work.head())
        for i in (1, 2):
            _copy_data(first.data, tmp_path / f"c{i}")
            replicas.append(Replica(repo=bare, data=tmp_path / f"c{i}", args=args).start())
        groups = f"{GROUP},{WAVES}"
        made = konorctl(first, "token", "create", "--groups", groups, "--count", "3", "-o", "json")
        tokens = json.loads(made.stdout)
        for i, (replica, token) in enumerate(zip(replicas, tokens["tokens"], strict=True)):
            agent = AgentProcess(tmp_path / f"agent{i}", CenterAt(replica.url, replica.pin))
            agents.append(agent.join(token["token"]).start())
        world = World(replicas, agents, work, db)
        first_release = world.latest()["id"]
        for agent in agents:
            wait_for(lambda a=agent: a.serves(first_release, GROUP), timeout=30,  # type: ignore[misc]
                     what=f"{agent.data.name} to serve {first_release}")  # fmt: skip
        yield world
    finally:
        for agent in agents:
            agent.stop()
        for replica in replicas:
            replica.stop()


def test_a_push_is_ingested_once_and_reaches_agents_on_every_replica(world: World) -> None:
    leaders = [r.leads_ingest() for r in world.replicas]
    assert leaders.count(True) == 1, leaders
    world.work.write("configsets/payments-common.yaml", payments_common(2, "USD"))
    sha = world.work.commit("payments-common v2")
    started = time.monotonic()
    world.work.push()
    follower = world.replicas[leaders.index(False)]
    # A webhook at a replica that does not lead is served by the leader's pass.
    resp = follower.request("POST", "/v1/hooks/git", params={"wait": "20"}, json={})
    assert resp.status_code == 202 and resp.json()["done"], resp.text
    assert follower.get(f"/v1/commits/{sha}")["status"] == "accepted"
    release = world.latest()
    assert release["commit"] == sha and release["sequence"] == 2
    for agent in world.agents:
        wait_for(lambda a=agent: a.serves(release["id"], GROUP), timeout=15,  # type: ignore[misc]
                 what=f"{agent.data.name} to serve {release['id']}")  # fmt: skip
    took = time.monotonic() - started
    assert world.query("SELECT count(*) FROM commits WHERE sha = %s", sha) == [(1,)]
    assert world.query(
        'SELECT count(*) FROM releases WHERE "group" = %s AND commit = %s', GROUP, sha
    ) == [(1,)]
    audited = "SELECT count(*) FROM audit WHERE action = %s AND details->>'sha' = %s"
    assert world.query(audited, "commit.accepted", sha) == [(1,)]
    print(f"push -> agents on 3 replicas: {took:.2f} s")


def test_the_ingest_leader_killed_mid_ingest_is_replaced_without_lost_or_duplicated_releases(
    world: World,
) -> None:
    leader = next(r for r in world.replicas if r.leads_ingest())
    survivors = [r for r in world.replicas if r is not leader]
    before = int(world.query("SELECT count(*) FROM commits")[0][0])
    pushed = []
    for version in range(2, 42):
        world.work.write("configsets/payments-common.yaml", payments_common(version, "USD"))
        pushed.append(world.work.commit(f"payments-common v{version}"))
    world.work.push()  # 40 commits: one pass that takes a while

    def some_ingested() -> int:
        return int(world.query("SELECT count(*) FROM commits")[0][0]) - before

    wait_for(some_ingested, timeout=30, interval=0.005, what="the leader to begin ingesting")
    leader.kill()
    killed = time.monotonic()
    at_kill = some_ingested()
    assert 0 < at_kill < len(pushed), "the pass ended before the kill: not mid-ingest"

    def all_ingested() -> bool:
        return some_ingested() == len(pushed)

    try:
        wait_for(all_ingested, timeout=60, what="another replica to ingest the rest")
    except AssertionError as exc:
        logs = "\n".join(f"--- {r.data.name}\n{r.output()[-4000:]}" for r in survivors)
        done = some_ingested()
        raise AssertionError(f"{exc}; {done} of {len(pushed)} ingested\n{logs}") from None
    rest = time.monotonic() - killed
    assert sum(r.leads_ingest() for r in survivors) == 1
    commits = world.query("SELECT sha, count(*) FROM commits GROUP BY sha HAVING count(*) > 1")
    assert commits == []
    sequences = [s for (s,) in world.query(
        "SELECT sequence FROM releases WHERE \"group\" = %s ORDER BY sequence", GROUP)]  # fmt: skip
    verdicts = world.query(
        "SELECT c.seq, c.sha, c.status, c.diagnostics::text, count(r.id) FROM commits c "
        'LEFT JOIN releases r ON r.commit = c.sha AND r."group" = %s '
        "GROUP BY c.seq, c.sha, c.status, c.diagnostics::text ORDER BY c.seq",
        GROUP,
    )
    # one Release per commit, none lost, none twice
    assert sequences == list(range(1, len(pushed) + 2)), verdicts
    per_commit = world.query(
        'SELECT commit, count(*) FROM releases WHERE "group" = %s GROUP BY commit', GROUP
    )
    assert all(n == 1 for _, n in per_commit) and {c for c, _ in per_commit} >= set(pushed)
    accepted = world.query(
        "SELECT details->>'sha', count(*) FROM audit WHERE action = 'commit.accepted' "
        "GROUP BY details->>'sha'"
    )
    assert {sha for sha, _ in accepted} >= set(pushed) and all(n == 1 for _, n in accepted)
    final = world.latest()
    assert final["commit"] == pushed[-1]
    for replica, agent in zip(world.replicas, world.agents, strict=True):
        if replica is not leader:
            wait_for(lambda a=agent: a.serves(final["id"], GROUP), timeout=30,  # type: ignore[misc]
                     what=f"{agent.data.name} to serve {final['id']}")  # fmt: skip
    print(f"killed the leader after {at_kill} of {len(pushed)} commits; the rest in {rest:.2f} s")


def test_a_rollout_s_waves_advance_on_reports_stored_by_any_replica(world: World) -> None:
    """Each wave's node reports to its own replica; the runner, on one of them, moves on.

    Completion is read from the rollout (every node's ``applied`` report), not
    from the agents' sockets: a ``get`` there makes this test a watching process
    whose ack the wave would wait for.
    """
    world.work.write("configsets/waves.yaml", waves_configset(2))
    sha = world.work.commit("waves v2")
    started = time.monotonic()
    world.work.push()

    def completed() -> dict[str, Any] | None:
        resp = world.replicas[2].request("GET", f"/v1/rollouts/{WAVES}")
        status: dict[str, Any] = resp.json()
        done = resp.status_code == 200 and status["phase"] == "completed"
        return status if done and status["release"]["id"].startswith(f"{WAVES}-2-") else None

    status = wait_for(completed, timeout=30, interval=0.02, what="the rollout to complete")
    took = time.monotonic() - started
    assert status["steps"] == 3 and [w["nodes"] for w in status["waves"]] == [1, 1, 1]
    assert [w["committed"] for w in status["waves"]] == [1, 1, 1]
    assert world.latest(WAVES)["commit"] == sha
    # Three waves, each waiting for its node's report (~0.5 s after the commit);
    # without reports forwarded to the driving runner, each could wait for its 5 s pass.
    assert took < 6.0, f"three waves took {took:.2f} s"
    print(f"push -> three waves over three replicas, completed: {took:.2f} s")


def _node_client(replica: Replica, agent: AgentProcess) -> httpx.Client:
    ident = agent.data / "identity"
    tls = ssl.create_default_context(cafile=str(ident / "center-ca.crt"))
    tls.load_cert_chain(str(ident / "node.pem"))
    return httpx.Client(base_url=replica.url, verify=tls, timeout=10)


def refused_after_revocation(
    world: World, at: int, *, before_revoking: Callable[[], None] = lambda: None
) -> float:
    """Seconds from a revocation through replica 0 until replica ``at`` answers the node 403.

    The node is ``world.agents[at]`` (joined to that replica), stopped so that only
    requests made here, with its certificate, reach the replica; one request first
    puts the node in the replica's cache, so a refusal proves the cache was dropped.
    """
    replica, node = world.replicas[at], world.agents[at]
    node.stop()
    with _node_client(replica, node) as client:
        asked = {"have": f"{GROUP}:0", "wait": "0"}
        assert client.get("/v1/agent/desired", params=asked).status_code == 200
        before_revoking()
        started = time.monotonic()
        resp = world.replicas[0].request("POST", f"/v1/nodes/{node.node_id}/revoke", json={})
        assert resp.status_code == 200, resp.text

        def refused() -> bool:
            return client.get("/v1/agent/desired", params=asked).status_code == 403

        wait_for(refused, timeout=10, interval=0.02, what=f"{replica.data.name} to refuse")
        return time.monotonic() - started


def test_a_revocation_on_one_replica_is_refused_by_another_within_a_second(
    world: World,
) -> None:
    took = refused_after_revocation(world, 1)
    assert took < 1.0, f"replica b refused the node {took:.2f} s after the revocation"
    print(f"revoked on a -> refused by b: {took:.3f} s")


def test_a_revocation_on_one_replica_closes_the_node_s_stream_on_another_within_a_second(
    world: World,
) -> None:
    a, b = world.replicas[0], world.replicas[1]
    node = world.agents[1]  # joined to b
    node.stop()  # the stream read here, with the node's certificate, is the one that matters
    stream = StreamReader(b, node, have=f"{GROUP}:0")  # type: ignore[arg-type]
    try:
        assert stream.status == 200 and stream.next()["releases"]
        started = time.monotonic()
        resp = a.request("POST", f"/v1/nodes/{node.node_id}/revoke", json={})
        assert resp.status_code == 200, resp.text
        while (frame := stream.next(timeout=5)) is not None and "closed" not in frame:
            pass  # a freshness refresh may come first
        took = time.monotonic() - started
        assert frame == {"closed": "node_revoked"}
        assert stream.next(timeout=5) is None  # the body ended
    finally:
        stream.close()
    assert took < 1.0, f"replica b closed the stream {took:.2f} s after the revocation"
    print(f"revoked on a -> stream on b closed: {took:.3f} s")


def test_a_revocation_reaches_a_replica_whose_listen_connection_was_just_cut(
    world: World,
) -> None:
    def cut() -> None:
        """End every replica's LISTEN session (a proxy or a server restart would): the
        revocation's NOTIFY goes out while nobody listens; c catches up from the audit log."""
        ended = world.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name LIKE 'konorkestra-listen-%%'"
        )
        assert len(ended) == 3

    took = refused_after_revocation(world, 2, before_revoking=cut)
    assert took < 3.0, f"replica c refused the node {took:.2f} s after the revocation"
    print(f"LISTEN cut, revoked on a -> refused by c: {took:.3f} s")


def test_an_agent_whose_centers_die_fails_over_to_the_last_one_and_converges(
    world: World, tmp_path: Path
) -> None:
    """Joined through replica 0 and told of the other two (``centers``); 0 and 1 are killed."""
    r0, r1, r2 = world.replicas
    grant = json.loads(konorctl(r0, "token", "create", "--groups", GROUP, "-o", "json").stdout)
    config = f'centers = ["{r1.url}", "{r2.url}"]\n'
    agent = AgentProcess(tmp_path / "roaming", CenterAt(r0.url, r0.pin), config=config)
    world.agents.append(agent.join(grant["token"]).start())
    first = world.latest()
    wait_for(lambda: agent.serves(first["id"], GROUP), timeout=30, what="the first release")
    r0.kill()
    r1.kill()
    world.work.write("configsets/payments-common.yaml", payments_common(2, "EUR"))
    world.work.commit("payments-common v2")
    started = time.monotonic()
    world.work.push()
    release = wait_for(
        lambda: (r := world.latest())["sequence"] > first["sequence"] and r,
        timeout=30, what="replica 2 to ingest the push",
    )  # fmt: skip
    wait_for(lambda: agent.serves(release["id"], GROUP), timeout=30, what="the roaming agent")
    assert agent.status()["sync"]["mode"] == "stream"
    print(f"two of three Centers killed, push -> the agent: {time.monotonic() - started:.2f} s")
