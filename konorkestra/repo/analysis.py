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
"""

from __future__ import annotations

from dataclasses import dataclass, field

from konorkestra.model.definitions import ConfigSetRef, Group, Policy
from konorkestra.model.durations import DurationError, parse_duration
from konorkestra.model.signals import GUARD_SIGNALS
from konorkestra.repo.configsets import BuiltConfigSet, build_configset
from konorkestra.repo.diagnostics import Diagnostic
from konorkestra.repo.loader import Definition, Snapshot
from konorkestra.repo.schemas import schema_diagnostics


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


def _group_checks(defn: Definition, result: Analysis) -> tuple[list[Diagnostic], dict[str, str]]:
    out: list[Diagnostic] = []
    chosen: dict[str, str] = {}
    for i, text in enumerate(defn.spec["configSets"]):
        ref = ConfigSetRef.parse(text)
        where = defn.where(("spec", "configSets", i))
        versions = result.versions.get(ref.name)
        if not versions:
            out.append(
                Diagnostic.error(
                    "missing-configset",
                    f"names ConfigSet {ref.name!r}, which is not defined",
                    **where,
                )
            )
            continue
        if ref.version is not None and ref.version not in versions:
            have = ", ".join(str(v) for v in sorted(versions))
            out.append(
                Diagnostic.error(
                    "missing-configset",
                    f"ConfigSet {ref.name!r} has no version {ref.version} (defined: {have})",
                    **where,
                )
            )
            continue
        key = f"{ref.name}@{ref.version or max(versions)}"
        if ref.name in chosen:
            out.append(
                Diagnostic.error(
                    "group-repeats-configset",
                    f"ConfigSet {ref.name!r} is listed twice ({chosen[ref.name]} and {key})",
                    **where,
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


def analyze(snapshot: Snapshot) -> Analysis:
    """Run every check that needs only this snapshot."""
    result = Analysis()
    seen: dict[tuple[str, str], Definition] = {}
    valid: list[Definition] = []
    for defn in snapshot.definitions:
        errors = schema_diagnostics(defn)
        result.diagnostics += errors
        ident = _identity(defn)
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
        if not errors:
            valid.append(defn)
    for defn in valid:
        if defn.kind == "ConfigSet":
            built = build_configset(defn, snapshot.source)
            result.diagnostics += built.diagnostics
            key = _identity(defn) or ""
            result.configset_defs[key] = defn
            if built.configset is not None:
                result.configsets[key] = built
        elif defn.kind == "Policy":
            problems = _policy_checks(defn)
            result.diagnostics += problems
            if not problems:
                result.policies[defn.name] = Policy.from_spec(defn.name, defn.spec)
    for defn in valid:
        if defn.kind == "Group":
            problems, chosen = _group_checks(defn, result)
            result.diagnostics += problems
            if not problems:
                result.groups[defn.name] = (Group.from_spec(defn.name, defn.spec), chosen)
    return result
