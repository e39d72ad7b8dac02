"""Per-node desired state as the long-poll reads it matches the engine's rule D1.

:func:`konorkestra.center.releases.desired.targets_of` is the lookup table the agent
routes keep per Group; for every state the rollout engine can reach (the hypothesis
state machine of ``tests/rollout/test_invariants.py``, with one more invariant) it must
offer each enrolled node exactly what :func:`konorkestra.rollout.desired` says.
"""

from __future__ import annotations

from hypothesis.stateful import invariant

from konorkestra.center.releases.desired import LatestRow, targets_of
from konorkestra.model.types import Digest, GroupName, ReleaseId, Sequence
from konorkestra.rollout import desired
from tests.rollout.test_invariants import Rollouts
from tests.rollout.world import GROUP


def _row(release: ReleaseId, sequence: int) -> LatestRow:
    return LatestRow(GroupName(GROUP), Sequence(sequence), release, Digest("sha256:" + "e" * 64))


class RolloutsAndTargets(Rollouts):
    @invariant()
    def targets_offer_what_the_engine_decided(self) -> None:
        rows = {rid: _row(rid, seq) for rid, seq in self.sequences.items()}
        targets = targets_of(GroupName(GROUP), None, self.state, rows)
        for node, wanted in desired(self.state, self.fleet()).items():
            row = targets.row_for(node)
            assert (None if row is None else row.release_id) == wanted, node


RolloutsAndTargets.TestCase.settings = Rollouts.TestCase.settings
test_targets_match_the_engine = RolloutsAndTargets.TestCase


def test_a_group_without_a_rollout_offers_its_latest_release_to_every_node() -> None:
    latest = _row(ReleaseId("checkout-4-00000000000000aa"), 4)
    targets = targets_of(GroupName(GROUP), latest, None, {})
    assert targets.row_for("any-node") == latest
    assert targets_of(GroupName(GROUP), None, None, {}).row_for("any-node") is None
