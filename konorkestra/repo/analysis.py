"""Check a whole snapshot and build its model objects (the core of validate/resolve).

Example::

    from konorkestra.repo.analysis import analyze
    result = analyze(snapshot)
    result.diagnostics            # schema, names, references, content, policy sanity
    result.configsets["checkout-api@3"].configset.digest()

Invariants:

* Every problem is collected; nothing stops at the first error.
* A definition with schema errors gets no further checks, but its name still
  counts for references and duplicates, so one typo gives one diagnostic.
* Names are unique per kind; ConfigSets are unique per ``name@version``.
* A Group reference ``name`` means the highest version of ``name`` present in
  the snapshot; ``name@version`` must exist exactly. A Group carries at most one
  version of each ConfigSet.
* Policy steps have strictly ascending percents and end at 100; an
  all-at-once Policy has exactly one step; every bake parses; every guard
  signal is in :data:`~konorkestra.model.signals.GUARD_SIGNALS`.
* Pure: reads repo files only through the snapshot's source.
* Two layers: :func:`definition_facts` is everything one definition decides on
  its own (schema, identity, Policy checks); the loop in :func:`analyze` does
  the cross-definition checks (duplicates, versions, references) with dict
  lookups. With an :class:`~konorkestra.repo.cache.AnalysisCache` the per-file
  layer and the ConfigSet builds are reused for unchanged content; the loop is
  the same code either way, so cached and uncached results are identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from konorkestra.model.definitions import ConfigSetSelector, Group, Policy
from konorkestra.model.durations import DurationError, parse_duration
from konorkestra.model.signals import GUARD_SIGNALS
from konorkestra.repo.configsets import BuiltConfigSet, build_configset
from konorkestra.repo.diagnostics import Diagnostic
from konorkestra.repo.loader import Definition, Snapshot
from konorkestra.repo.schemas import schema_diagnostics
from konorkestra.repo.sources import FileSource


class FactsCache(Protocol):
    """What analysis needs from a cache (:class:`~konorkestra.repo.cache.AnalysisCache` is one):
    declared here so analysis never imports the cache, which imports analysis."""

    def facts(self, defn: Definition, key: str | None) -> DefinitionFacts:
        """:func:`definition_facts` of ``defn``, reused by content key."""
        ...

    def configset(self, defn: Definition, key: str | None, source: FileSource) -> BuiltConfigSet:
        """:func:`~konorkestra.repo.configsets.build_configset`, reused while its inputs match."""
        ...


@dataclass
class Analysis:
    """Everything learned from one snapshot."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    configsets: dict[str, BuiltConfigSet] = field(default_factory=dict)
    configset_defs: dict[str, Definition] = field(default_factory=dict)
    versions: dict[str, list[int]] = field(default_factory=dict)
    policies: dict[str, Policy] = field(default_factory=dict)
    groups: dict[str, tuple[Group, dict[str, str]]] = field(default_factory=dict)
    """Group name -> (group, ConfigSet name -> resolved ``name@version``)."""
    names: dict[str, set[str]] = field(default_factory=dict)
    """Kind -> every name defined, valid or not (for reference checks)."""


@dataclass
class DefinitionFacts:
    """What one definition decides on its own: a pure function of its document and path.

    Shared between snapshots by the cache, so never mutated after creation
    except for the memoized Group parts (idempotent).
    """

    schema: list[Diagnostic]
    identity: str | None
    policy_problems: list[Diagnostic] = field(default_factory=list)
    policy: Policy | None = None
    _refs: tuple[ConfigSetSelector, ...] | None = field(default=None, repr=False)
    _group: Group | None = field(default=None, repr=False)

    def refs(self, defn: Definition) -> tuple[ConfigSetSelector, ...]:
        """The parsed ``spec.configSets`` of a schema-valid Group (memoized)."""
        if self._refs is None:
            self._refs = tuple(ConfigSetSelector.parse(text) for text in defn.spec["configSets"])
        return self._refs

    def group(self, defn: Definition) -> Group:
        """``Group.from_spec`` of a schema-valid Group (memoized)."""
        if self._group is None:
            self._group = Group.from_spec(defn.name, defn.spec)
        return self._group


def definition_facts(defn: Definition) -> DefinitionFacts:
    """Schema diagnostics, identity and (for a schema-valid Policy) its own checks."""
    facts = DefinitionFacts(schema_diagnostics(defn), _identity(defn))
    if not facts.schema and defn.kind == "Policy":
        facts.policy_problems = _policy_checks(defn)
        if not facts.policy_problems:
            facts.policy = Policy.from_spec(defn.name, defn.spec)
    return facts


def _identity(defn: Definition) -> str | None:
    if not defn.name:
        return None
    if defn.kind != "ConfigSet":
        return defn.name
    version = defn.value.get("metadata", {}).get("version")
    ok = isinstance(version, int) and not isinstance(version, bool)
    return f"{defn.name}@{version}" if ok else None


def _policy_checks(defn: Definition) -> list[Diagnostic]:
    spec = defn.spec
    out: list[Diagnostic] = []
    steps = spec.get("steps", [])
    percents = [s["percent"] for s in steps]
    if spec["strategy"] == "all-at-once" and len(steps) > 1:
        out.append(
            Diagnostic.error(
                "policy-steps",
                "an all-at-once policy has a single step",
                hint="use strategy canary or linear for waves, or keep one step at 100",
                **defn.where(("spec", "steps", 1)),
            )
        )
    for i in range(1, len(percents)):
        if percents[i] <= percents[i - 1]:
            out.append(
                Diagnostic.error(
                    "policy-steps",
                    f"step {i + 1} goes to {percents[i]}% after {percents[i - 1]}%; "
                    "percents must strictly increase",
                    **defn.where(("spec", "steps", i, "percent")),
                )
            )
    if percents and percents[-1] != 100:
        out.append(
            Diagnostic.error(
                "policy-steps",
                f"the last step is {percents[-1]}%; it must be 100%",
                hint="add a final step {percent: 100}",
                **defn.where(("spec", "steps", len(percents) - 1, "percent")),
            )
        )
    for i, step in enumerate(steps):
        if "bake" in step:
            try:
                parse_duration(step["bake"])
            except DurationError as exc:
                out.append(
                    Diagnostic.error(
                        "policy-duration",
                        f"bake: {exc}",
                        **defn.where(("spec", "steps", i, "bake")),
                    )
                )
    for i, guard in enumerate(spec.get("guards", [])):
        if guard["signal"] not in GUARD_SIGNALS:
            out.append(
                Diagnostic.error(
                    "guard-signal",
                    f"unknown guard signal {guard['signal']!r}",
                    hint="known signals: " + ", ".join(sorted(GUARD_SIGNALS)),
                    **defn.where(("spec", "guards", i, "signal")),
                )
            )
    return out


def _group_checks(
    defn: Definition, facts: DefinitionFacts, result: Analysis
) -> tuple[list[Diagnostic], dict[str, str]]:
    out: list[Diagnostic] = []
    chosen: dict[str, str] = {}
    for i, ref in enumerate(facts.refs(defn)):
        versions = result.versions.get(ref.name)
        if not versions:
            out.append(
                Diagnostic.error(
                    "missing-configset",
                    f"names ConfigSet {ref.name!r}, which is not defined",
                    **defn.where(("spec", "configSets", i)),
                )
            )
            continue
        if ref.version is not None and ref.version not in versions:
            have = ", ".join(str(v) for v in sorted(versions))
            out.append(
                Diagnostic.error(
                    "missing-configset",
                    f"ConfigSet {ref.name!r} has no version {ref.version} (defined: {have})",
                    **defn.where(("spec", "configSets", i)),
                )
            )
            continue
        key = f"{ref.name}@{ref.version or max(versions)}"
        if ref.name in chosen:
            out.append(
                Diagnostic.error(
                    "group-repeats-configset",
                    f"ConfigSet {ref.name!r} is listed twice ({chosen[ref.name]} and {key})",
                    **defn.where(("spec", "configSets", i)),
                )
            )
        chosen[ref.name] = key
    policy = defn.spec["policy"]
    if policy not in result.names.get("Policy", set()):
        out.append(
            Diagnostic.error(
                "missing-policy",
                f"names Policy {policy!r}, which does not exist",
                **defn.where(("spec", "policy")),
            )
        )
    return out, chosen


def analyze(snapshot: Snapshot, *, cache: FactsCache | None = None) -> Analysis:
    """Run every check that needs only this snapshot.

    With ``cache``, per-definition facts and ConfigSet builds of content seen
    before are reused (see :mod:`konorkestra.repo.cache`); the result is the same.
    """
    result = Analysis()
    seen: dict[tuple[str, str], Definition] = {}
    valid: list[tuple[Definition, DefinitionFacts]] = []
    keys = snapshot.content_keys if cache is not None else {}
    for defn in snapshot.definitions:
        if cache is not None:
            facts = cache.facts(defn, keys.get(defn.file))
        else:
            facts = definition_facts(defn)
        result.diagnostics += facts.schema
        ident = facts.identity
        if ident is None:
            continue
        first = seen.get((defn.kind, ident))
        if first is not None:
            result.diagnostics.append(
                Diagnostic.error(
                    "duplicate-name",
                    f"{ident} is already defined at {first.file}:{first.line}",
                    **defn.where(("metadata", "name")),
                )
            )
            continue
        seen[(defn.kind, ident)] = defn
        result.names.setdefault(defn.kind, set()).add(defn.name)
        if defn.kind == "ConfigSet":
            result.versions.setdefault(defn.name, []).append(int(ident.rsplit("@", 1)[1]))
        if not facts.schema:
            valid.append((defn, facts))
    for defn, facts in valid:
        if defn.kind == "ConfigSet":
            if cache is not None:
                built = cache.configset(defn, keys.get(defn.file), snapshot.source)
            else:
                built = build_configset(defn, snapshot.source)
            result.diagnostics += built.diagnostics
            key = facts.identity or ""
            result.configset_defs[key] = defn
            if built.configset is not None:
                result.configsets[key] = built
        elif defn.kind == "Policy":
            result.diagnostics += facts.policy_problems
            if facts.policy is not None:
                result.policies[defn.name] = facts.policy
    for defn, facts in valid:
        if defn.kind == "Group":
            problems, chosen = _group_checks(defn, facts, result)
            result.diagnostics += problems
            if not problems:
                result.groups[defn.name] = (facts.group(defn), chosen)
    return result
