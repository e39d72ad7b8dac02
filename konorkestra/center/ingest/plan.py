"""Which Groups an accepted commit releases: a pure plan, computed before anything is written.

Example::

    >>> from konorkestra.center.ingest.plan import GroupState, plan_releases
    >>> from konorkestra.model.release import ConfigSetRef
    >>> api = ConfigSetRef("api", 1, "sha256:" + "ab" * 32, 10)
    >>> checkout = GroupState("checkout", (api,), "canary", "sha256:" + "cd" * 32)
    >>> [s.group for s in plan_releases({}, [checkout], released=())]
    ['checkout']
    >>> plan_releases({"checkout": checkout.key}, [checkout], released={"checkout"})
    []

:mod:`konorkestra.center.ingest.process` judges the commit, fetches what the
plan needs (the previous accepted commit's Group states, which Groups have a
Release) and writes what it decides. The plan's rules, each tested by name in
``tests/center/ingest/test_ingest_plan.py``:

* **P1** A Group the previous accepted commit did not define is released: the
  first commit, a new Group, a Group restored after its deletion.
* **P2** A Group whose ConfigSet versions differ from the previous accepted
  commit is released: a ConfigSet added or removed, another version, another
  digest.
* **P3** A Group whose Policy digest differs from the previous accepted commit
  is released, even with the same ConfigSets.
* **P4** A Group unchanged since the previous accepted commit is released when
  it has never been released.
* **P5** A Group unchanged since the previous accepted commit that has a
  Release is not released again: its nodes have nothing new to do.
* **P6** A Group's state is the set of its ``(name, version, digest)`` plus its
  Policy digest: the order ConfigSets are listed in and their sizes do not
  count.
* **P7** A Group the previous accepted commit defined and this one does not gets
  no Release: whether it may go is judged before (rules D1–D6 of
  :mod:`konorkestra.repo.deletions`), and its nodes keep its last Release.
* **P8** The plan holds one Release per Group, in Group-name order (the order
  the Releases are signed, stored and audited in).
* **P9** Only unchanged Groups need the store's answer to "has it a Release?"
  (:func:`unchanged`); whether a changed Group was ever released does not matter.

Pure: no database, no Git, no clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from konorkestra.model.release import ConfigSetRef
from konorkestra.model.types import ConfigSetName, Digest, GroupName, PolicyName


@dataclass(frozen=True)
class StateKey:
    """What decides whether a Group changed (P6): its ConfigSet versions and Policy digest."""

    configsets: tuple[tuple[ConfigSetName, int, Digest], ...]
    """Sorted ``(name, version, digest)``."""
    policy_digest: Digest

    @classmethod
    def of(cls, configsets: Iterable[ConfigSetRef], policy_digest: Digest) -> StateKey:
        return cls(tuple(sorted((c.name, c.version, c.digest) for c in configsets)), policy_digest)


@dataclass(frozen=True)
class GroupState:
    """One Group as an accepted commit resolves it (one ``group_states`` row)."""

    group: GroupName
    configsets: tuple[ConfigSetRef, ...]
    """In the order the Group lists them; each with its blob's size."""
    policy: PolicyName
    policy_digest: Digest

    @property
    def key(self) -> StateKey:
        return StateKey.of(self.configsets, self.policy_digest)


def unchanged(
    previous: Mapping[GroupName, StateKey], current: Iterable[GroupState]
) -> list[GroupName]:
    """The Groups of ``current`` whose state equals ``previous``'s, by name (P9).

    Only for these does :func:`plan_releases` need to know whether they have a Release.
    """
    return sorted(s.group for s in current if previous.get(s.group) == s.key)


def plan_releases(
    previous: Mapping[GroupName, StateKey],
    current: Iterable[GroupState],
    released: Collection[GroupName],
) -> list[GroupState]:
    """The Groups of ``current`` to release, in name order (rules P1–P8).

    ``previous`` is the state of every Group at the previous accepted commit
    (empty for the first); ``current`` the Groups this commit resolves;
    ``released`` the Groups that have at least one Release (it needs to hold
    only the Groups :func:`unchanged` names).
    """
    plan = []
    for state in sorted(current, key=lambda s: s.group):
        if previous.get(state.group) == state.key and state.group in released:
            continue  # P5
        plan.append(state)  # P1-P4
    return plan
