"""The diff of two Releases, ConfigSet by ConfigSet: what ``konorctl diff A B`` and the
dashboard's Release page show.

Example::

    from konorkestra.repo.releasediff import diff_releases
    diff = diff_releases(old, new, contents)       # contents: every ConfigSet by digest
    diff.changed, [cs.op for cs in diff.configsets], diff.policy
    diff.to_json()                                 # konorctl diff -o json's "release"

Rules (stated with ids in :mod:`konorkestra.cli.diff_releases`, RD3-RD5, and
tested there by name):

* **RD3** ConfigSets are compared by :func:`konorkestra.repo.semdiff.diff_configsets`
  (rules SD2-SD9 there): each name on either side once, in name order, with its
  version before → after, data, schema and raw files by digest and size.
* **RD4** The Policy is compared by name, digest and strategy
  (:data:`POLICY_COMPARED`): all a Release carries of its Policy
  (a :class:`~konorkestra.model.release.PolicyRef`).
* **RD5** The diff is content only: ids, sequences, commits and times never make
  a difference; two Releases of different Groups may be compared.

Pure: two Releases and their ConfigSets in, a frozen diff out. Where the
ConfigSets come from is the caller's: the CLI reads them from a Center's
``/v1/blobs``, the Center from its own store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from konorkestra.model.definitions import ConfigSet
from konorkestra.model.release import ConfigSetRef, PolicyRef, Release
from konorkestra.model.types import Digest, JsonObject
from konorkestra.repo.semdiff import ConfigSetDiff, FieldChange, diff_configsets

POLICY_COMPARED = ("name", "digest", "strategy")
"""What a Release diff compares of a Policy, in this order (RD4)."""
POLICY_NOTE = (
    "a Release's Policy is compared by name, digest and strategy only: the Center "
    "does not serve its steps, guards or approval; diff the two commits for those"
)


@dataclass(frozen=True)
class ReleaseDiff:
    """Two Releases' ConfigSets (RD3) and Policy references (RD4), before → after."""

    old: Release
    new: Release
    configsets: tuple[ConfigSetDiff, ...]
    policy: tuple[FieldChange, ...]

    @property
    def same_group(self) -> bool:
        return self.old.group == self.new.group

    @property
    def changed(self) -> bool:
        """RD5: a ConfigSet other than ``same``, or a Policy field that differs."""
        return bool(self.policy) or any(cs.op != "same" for cs in self.configsets)

    def counts(self) -> dict[str, int]:
        ops = [cs.op for cs in self.configsets]
        return {
            "added": ops.count("add"),
            "removed": ops.count("remove"),
            "changed": ops.count("change"),
            "unchanged": ops.count("same"),
        }

    def to_json(self) -> JsonObject:
        """``groups``, ``configsets`` (as in a revision diff), ``policy``, ``summary``."""
        return {
            "groups": {"before": self.old.group, "after": self.new.group},
            "same_group": self.same_group,
            "configsets": [cs.to_json() for cs in self.configsets],
            "policy": {
                "before": self.old.policy.to_json(),
                "after": self.new.policy.to_json(),
                "changes": [f.to_json() for f in self.policy],
                "compared": list(POLICY_COMPARED),
            },
            "summary": {"configsets": self.counts(), "policy_changed": bool(self.policy)},
        }


def _policy_fields(old: PolicyRef, new: PolicyRef) -> tuple[FieldChange, ...]:
    before = {"name": old.name, "digest": old.digest, "strategy": old.strategy or ""}
    after = {"name": new.name, "digest": new.digest, "strategy": new.strategy or ""}
    return tuple(
        FieldChange(f, before[f], after[f]) for f in POLICY_COMPARED if before[f] != after[f]
    )


def diff_releases(old: Release, new: Release, contents: Mapping[Digest, ConfigSet]) -> ReleaseDiff:
    """The diff of two Releases; ``contents`` holds every ConfigSet either carries, by digest."""

    def content(ref: ConfigSetRef | None) -> ConfigSet | None:
        if ref is None:
            return None
        if ref.digest not in contents:
            raise ValueError(f"no content given for {ref.ref} ({ref.digest})")
        return contents[ref.digest]

    names = sorted({c.name for c in old.configsets} | {c.name for c in new.configsets})
    configsets = tuple(
        diff_configsets(content(old.configset(n)), content(new.configset(n))) for n in names
    )
    return ReleaseDiff(old, new, configsets, _policy_fields(old.policy, new.policy))
