"""``resolve``: a valid snapshot as exactly what the Center releases.

Example::

    from konorkestra.repo import load_commit, resolve, validate
    snap = load_commit(repo, "main")
    assert not validate(snap)
    resolved = resolve(snap)
    group = resolved.groups["checkout"]
    group.policy.strategy, group.policy_digest
    [(cs.name, cs.version, cs.digest) for cs in group.configsets]

Invariants:

* ``resolve`` refuses (:class:`ResolveError`) any snapshot with an error
  diagnostic; callers validate first and show the diagnostics.
* ``ResolvedConfigSet.blob`` is the canonical ConfigSet blob of
  docs/contributing/contracts.md and ``digest == digest_of(blob)``; ``files`` holds the raw
  bytes of every ``spec.files`` path, whose digests and sizes the blob lists.
* A Group's ConfigSets are ordered by name; a bare reference is resolved to
  the highest version present in the snapshot.
* ``resolve(snapshot, analysis=analyze(snapshot))`` equals ``resolve(snapshot)``:
  passing the analysis (or a cache) only avoids redoing it. The analysis must be
  of this very snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from konorkestra.model.definitions import ConfigSet, Policy
from konorkestra.model.types import ConfigSetName, Digest, GroupName
from konorkestra.repo.analysis import Analysis, analyze
from konorkestra.repo.cache import AnalysisCache
from konorkestra.repo.configsets import BuiltConfigSet
from konorkestra.repo.diagnostics import Diagnostic, has_errors
from konorkestra.repo.loader import Snapshot


class ResolveError(ValueError):
    """The snapshot has errors; ``diagnostics`` says which."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__(f"the config repo has {len(diagnostics)} error(s); run validate")
        self.diagnostics = diagnostics


@dataclass(frozen=True)
class ResolvedConfigSet:
    name: ConfigSetName
    version: int
    digest: Digest
    blob: bytes = field(repr=False)
    files: dict[str, bytes] = field(repr=False, hash=False)
    configset: ConfigSet = field(repr=False, hash=False)

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class ResolvedGroup:
    name: GroupName
    policy: Policy
    policy_digest: Digest
    configsets: tuple[ResolvedConfigSet, ...]


@dataclass(frozen=True)
class Resolved:
    groups: dict[str, ResolvedGroup]
    configsets: dict[str, ResolvedConfigSet]
    """Every ``name@version`` in the snapshot, referenced by a Group or not."""
    commit: str | None = None


def _resolved(built: BuiltConfigSet) -> ResolvedConfigSet:
    cs = built.configset
    assert cs is not None
    return ResolvedConfigSet(cs.name, cs.version, cs.digest(), cs.blob(), dict(built.files), cs)


def resolve(
    snapshot: Snapshot,
    *,
    analysis: Analysis | None = None,
    cache: AnalysisCache | None = None,
) -> Resolved:
    """Resolve every Group to its Policy and exact ConfigSet versions.

    ``analysis``: :func:`~konorkestra.repo.analysis.analyze` of ``snapshot``, if
    the caller has it already; otherwise it is computed (through ``cache``).
    """
    if analysis is None:
        analysis = analyze(snapshot, cache=cache)
    problems = [*snapshot.diagnostics, *analysis.diagnostics]
    if has_errors(problems):
        raise ResolveError([d for d in problems if d.is_error])
    configsets = {key: _resolved(built) for key, built in sorted(analysis.configsets.items())}
    groups: dict[str, ResolvedGroup] = {}
    policy_digests: dict[str, Digest] = {}
    for name, (group, chosen) in sorted(analysis.groups.items()):
        policy = analysis.policies[group.policy]
        digest = policy_digests.get(group.policy)
        if digest is None:
            digest = policy_digests[group.policy] = policy.digest()
        members = tuple(configsets[chosen[n]] for n in sorted(chosen))
        groups[name] = ResolvedGroup(group.name, policy, digest, members)
    return Resolved(groups, configsets, snapshot.commit)
