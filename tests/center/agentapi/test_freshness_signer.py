"""The Center's freshness signer: the agent's bytes, one template per fan-out."""

from __future__ import annotations

import datetime as dt

from konorkestra.center.agentapi.freshness import TEMPLATES, FreshnessSigner
from konorkestra.center.releases.desired import LatestRow, freshness_entries
from konorkestra.model.types import Digest, GroupName, ReleaseId, Sequence
from konorkestra.trust import FreshnessStatement, Signer, TrustRoot, Verifier, make_root
from konorkestra.trust.sign import sign_freshness
from tests.trust.test_freshtemplate import DeterministicSigner


def row(group: str, seq: int) -> LatestRow:
    digest = Digest("sha256:" + format(seq, "x").rjust(64, "0"))
    return LatestRow(GroupName(group), Sequence(seq), ReleaseId(f"{group}-{seq}-x"), digest)


def test_statements_are_the_slow_paths_bytes_and_the_agent_accepts_them() -> None:
    now = [dt.datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=dt.UTC)]
    key = DeterministicSigner(Signer.generate())
    signer = FreshnessSigner([key], clock=lambda: now[0])
    latest = [row("checkout", 4), row("payments", 9)]
    for node in ("node-01", "web.eu-1_a", "n"):
        slow = FreshnessStatement.create(node=node, latest=freshness_entries(latest), now=now[0],
                                         ttl=signer.ttl)  # fmt: skip
        assert signer.freshness(node, latest) == sign_freshness(slow, [key])
    root_key = Signer.generate()
    root_bytes = make_root(
        root=[root_key.public_key],
        release=[root_key.public_key],
        timestamp=[key.public_key],
        expires=now[0] + dt.timedelta(days=1),
        signers=[root_key],
    )
    root = TrustRoot.from_bytes(root_bytes)
    verifier = Verifier(root, {}, now[0], scope={"checkout", "payments"}, node="node-01")
    status = verifier.check_freshness(signer.freshness("node-01", latest))
    assert not status.stale and status.withheld == ("checkout", "payments")


def test_a_fan_out_builds_one_template_and_the_templates_are_bounded() -> None:
    now = [dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)]
    signer = FreshnessSigner([Signer.generate()], clock=lambda: now[0])
    latest = [row("checkout", 4)]
    for i in range(50):
        signer.freshness(f"node-{i}", latest)
    assert len(signer._templates) == 1  # one canonical payload for fifty nodes
    for i in range(TEMPLATES + 5):
        now[0] += dt.timedelta(seconds=1)
        signer.freshness("node-0", [row("checkout", 5 + i)])
    assert 1 <= len(signer._templates) <= TEMPLATES
