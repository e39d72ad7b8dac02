"""The semantic diff: what a change to a config repo does to each Group's Release.

Example::

    from konorkestra.repo import load_commit, resolve
    from konorkestra.repo.semdiff import diff_resolved
    before = resolve(load_commit(repo, "origin/main"))
    after = resolve(load_commit(repo, "HEAD"))
    diff = diff_resolved(before, after)
    for group in diff.groups:                     # only Groups whose Release changes
        for cs in group.configsets:
            print(cs.name, cs.old_version, "->", cs.new_version)
            print("\\n".join(c.line() for c in cs.data))   # ~ /timeout_ms: 250 → 400
        print([(f.field, f.old, f.new) for f in group.policy.fields])
    diff.to_json()                                # konorctl diff -o json

``konorctl diff`` prints it (:mod:`konorkestra.cli.diff_view`); ``konorctl
plan`` builds on it. The rules, each tested by name in
``tests/repo/test_semdiff.py``:

* **SD1** A Group is listed when it is defined on one side only (``add`` /
  ``remove``) or when its state differs: the set of its ConfigSets'
  ``(name, version, digest)`` or its Policy digest -- exactly what makes the
  Center release it (rules P2, P3, P6 of :mod:`konorkestra.center.ingest.plan`).
  Other Groups are only named in ``unchanged``. Groups are in name order.
* **SD2** A listed Group shows each ConfigSet it has on either side once, in
  name order, with its version before → after: ``add``, ``remove``, ``change``
  (another version or digest) or ``same`` (context only, no data shown).
* **SD3** A ConfigSet's ``spec.data`` (and ``spec.schema``) is compared as
  JSON: objects key by key in code-point order, giving ``add``, ``remove``
  and ``change`` with old → new values. An added or removed ConfigSet is
  compared with empty data, no schema and no files, so every top-level key
  shows as added (or removed).
* **SD4** Values are JSON values: a boolean never equals a number, ``1``
  equals ``1.0`` (as in canonical JSON, so the digest agrees), and a change
  of type (a string becoming an object) is one change at that path, with no
  descent into either side.
* **SD5** Lists are compared by index: common indexes recurse, extra indexes
  are added or removed. A list is *keyed* instead when every element of both
  sides is an object with a string ``name``, unique on each side, and the
  names present on both sides keep their relative order: elements then match
  by name -- removals first (old order), then the new list's order. A
  reordered keyed list falls back to index order, so the reorder shows.
* **SD6** A path is a JSON pointer (RFC 6901 escaping) relative to
  ``spec.data`` (or ``spec.schema``); a keyed element's segment is
  ``[name=X]``. A schema present on one side only is one change at the
  empty path (the whole schema).
* **SD7** A value is shown as compact JSON with sorted keys (strings
  quoted). Longer than :data:`~konorkestra.repo.valuediff.ELIDE_AT` (120)
  characters, it is cut there and ``…`` appended, and its full length is
  given (text ``(N chars)``, JSON ``old_chars``/``new_chars``).
* **SD8** Nothing goes unseen: two ConfigSets whose data, schema or files
  differ give at least one change; equal content gives none, so a version
  bump alone shows only the versions.
* **SD9** Raw files (``spec.files``) are compared by path, in path order, by
  digest and size; their contents are never shown.
* **SD10** A listed Group always carries the Policy that governs it before
  and after. Its ``fields`` are the Policy's ``name``, ``strategy``, ``steps``
  (percent, bake, selector), ``guards`` (signal, max/min, threshold),
  ``onFailure`` and ``approval`` that differ, in that order, as text
  before → after (empty before for an added Group, empty after for a removed one).
* **SD11** What no Group resolves to is not in the diff -- a ConfigSet version
  no Group picks, a Policy no Group uses: it releases nothing.
* **SD12** The diff is a function of its inputs: the same two states give an
  equal diff and equal JSON, whatever order the repo listed things in.

Pure: two :class:`~konorkestra.repo.resolve.Resolved` states (or two model
ConfigSets) in, a frozen diff out; no Git, no disk, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from konorkestra.model.definitions import ConfigSet, FileEntry, Policy, Step
from konorkestra.model.types import ConfigSetName, Digest, GroupName, JsonObject
from konorkestra.repo.resolve import Resolved, ResolvedGroup
from konorkestra.repo.valuediff import Change, Op, Shown, diff_values

ConfigSetOp = Literal["add", "remove", "change", "same"]
POLICY_FIELDS = ("name", "strategy", "steps", "guards", "onFailure", "approval")
"""The Policy fields a diff compares, in the order it shows them (SD10)."""


@dataclass(frozen=True)
class FileChange:
    """A raw file of a ConfigSet, by digest and size (SD9)."""

    op: Op
    path: str
    old: FileEntry | None
    new: FileEntry | None

    def to_json(self) -> JsonObject:
        out: JsonObject = {"op": self.op, "path": self.path}
        for side, entry in (("old", self.old), ("new", self.new)):
            if entry is not None:
                out[side] = {"digest": entry.digest, "size": entry.size}
        return out


@dataclass(frozen=True)
class ConfigSetDiff:
    """One ConfigSet from before to after: versions, data, schema and files."""

    name: ConfigSetName
    op: ConfigSetOp
    old_version: int | None
    new_version: int | None
    old_digest: Digest | None
    new_digest: Digest | None
    data: tuple[Change, ...] = ()
    schema: tuple[Change, ...] = ()
    files: tuple[FileChange, ...] = ()

    @property
    def content_changed(self) -> bool:
        """True when data, schema or files differ (SD8)."""
        return bool(self.data or self.schema or self.files)

    def to_json(self) -> JsonObject:
        def side(version: int | None, digest: Digest | None) -> JsonObject | None:
            return None if version is None else {"version": version, "digest": digest}

        return {
            "name": self.name,
            "op": self.op,
            "before": side(self.old_version, self.old_digest),
            "after": side(self.new_version, self.new_digest),
            "data": [c.to_json() for c in self.data],
            "schema": [c.to_json() for c in self.schema],
            "files": [f.to_json() for f in self.files],
        }


@dataclass(frozen=True)
class FieldChange:
    """One Policy field, as text before → after (SD10)."""

    field: str
    old: str
    new: str

    def to_json(self) -> JsonObject:
        return {"field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class PolicyDiff:
    """The Policy that governs a Group before and after, and the fields that differ."""

    old: Policy | None
    new: Policy | None
    old_digest: Digest | None
    new_digest: Digest | None
    fields: tuple[FieldChange, ...]

    def to_json(self) -> JsonObject:
        def side(policy: Policy | None, digest: Digest | None) -> JsonObject | None:
            if policy is None:
                return None
            spec: JsonObject = policy.canonical_dict()["spec"]
            return {"name": policy.name, "digest": digest, **spec}

        return {
            "before": side(self.old, self.old_digest),
            "after": side(self.new, self.new_digest),
            "changes": [f.to_json() for f in self.fields],
        }


@dataclass(frozen=True)
class GroupDiff:
    """A Group whose Release would change (SD1)."""

    name: GroupName
    op: Op
    configsets: tuple[ConfigSetDiff, ...]
    policy: PolicyDiff

    def to_json(self) -> JsonObject:
        return {
            "group": self.name,
            "op": self.op,
            "configsets": [c.to_json() for c in self.configsets],
            "policy": self.policy.to_json(),
        }


@dataclass(frozen=True)
class SemanticDiff:
    """Every Group whose Release would change, in name order, and the unchanged names."""

    groups: tuple[GroupDiff, ...]
    unchanged: tuple[GroupName, ...]

    @property
    def changed(self) -> bool:
        return bool(self.groups)

    def to_json(self) -> JsonObject:
        ops = [g.op for g in self.groups]
        return {
            "groups": [g.to_json() for g in self.groups],
            "summary": {
                "added": ops.count("add"),
                "removed": ops.count("remove"),
                "changed": ops.count("change"),
                "unchanged": len(self.unchanged),
            },
            "unchanged": list(self.unchanged),
        }


def _files(old: Mapping[str, FileEntry], new: Mapping[str, FileEntry]) -> tuple[FileChange, ...]:
    out: list[FileChange] = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        op: Op = "add" if before is None else "remove" if after is None else "change"
        out.append(FileChange(op, path, before, after))
    return tuple(out)


def _schema(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> tuple[Change, ...]:
    """A schema present on one side only is one change at the empty path (the whole schema)."""
    if old is None and new is None:
        return ()
    if old is None:
        return (Change("add", "", None, Shown.of(new)),)
    if new is None:
        return (Change("remove", "", Shown.of(old), None),)
    return diff_values(old, new)


def diff_configsets(old: ConfigSet | None, new: ConfigSet | None) -> ConfigSetDiff:
    """The diff of one ConfigSet between two versions (either side may be absent, SD3)."""
    present = new if new is not None else old
    if present is None:
        raise ValueError("diff_configsets needs at least one ConfigSet")
    op: ConfigSetOp
    if old is None:
        op = "add"
    elif new is None:
        op = "remove"
    else:
        op = "same" if old.digest() == new.digest() else "change"
    schema = _schema(old.schema if old else None, new.schema if new else None)
    return ConfigSetDiff(
        name=present.name,
        op=op,
        old_version=old.version if old else None,
        new_version=new.version if new else None,
        old_digest=old.digest() if old else None,
        new_digest=new.digest() if new else None,
        data=diff_values(old.data if old else {}, new.data if new else {}),
        schema=schema,
        files=_files(old.files if old else {}, new.files if new else {}),
    )


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)
    return text or "0s"


def _step(step: Step) -> str:
    text = f"{step.percent}%"
    if step.bake_seconds:
        text += f" bake {_duration(step.bake_seconds)}"
    if step.selector:
        text += " on " + ",".join(f"{k}={v}" for k, v in sorted(step.selector.items()))
    return text


def describe_policy(policy: Policy | None) -> dict[str, str]:
    """Each of :data:`POLICY_FIELDS` as one line of text ("" for an absent Policy)."""
    if policy is None:
        return dict.fromkeys(POLICY_FIELDS, "")
    guards = ", ".join(f"{g.signal} {g.comparison} {g.threshold:g}" for g in policy.guards)
    return {
        "name": policy.name,
        "strategy": policy.strategy,
        "steps": ", ".join(_step(s) for s in policy.steps),
        "guards": guards or "none",
        "onFailure": policy.on_failure,
        "approval": policy.approval,
    }


def diff_policies(
    old: Policy | None,
    new: Policy | None,
    old_digest: Digest | None = None,
    new_digest: Digest | None = None,
) -> PolicyDiff:
    """The fields of :data:`POLICY_FIELDS` that differ, in that order (SD10)."""
    before, after = describe_policy(old), describe_policy(new)
    fields = tuple(
        FieldChange(f, before[f], after[f]) for f in POLICY_FIELDS if before[f] != after[f]
    )
    return PolicyDiff(old, new, old_digest, new_digest, fields)


def _state(group: ResolvedGroup) -> tuple[frozenset[tuple[str, int, str]], str]:
    members = frozenset((cs.name, cs.version, cs.digest) for cs in group.configsets)
    return members, group.policy_digest


def diff_group(name: str, old: ResolvedGroup | None, new: ResolvedGroup | None) -> GroupDiff:
    """One Group from before to after (SD2, SD10); either side may be absent."""
    before = {cs.name: cs.configset for cs in old.configsets} if old else {}
    after = {cs.name: cs.configset for cs in new.configsets} if new else {}
    configsets = tuple(
        diff_configsets(before.get(n), after.get(n)) for n in sorted(set(before) | set(after))
    )
    policy = diff_policies(
        old.policy if old else None,
        new.policy if new else None,
        old.policy_digest if old else None,
        new.policy_digest if new else None,
    )
    op: Op = "add" if old is None else "remove" if new is None else "change"
    return GroupDiff(GroupName(name), op, configsets, policy)


def diff_resolved(before: Resolved, after: Resolved) -> SemanticDiff:
    """Every Group whose Release would change from ``before`` to ``after`` (SD1, SD11)."""
    groups: list[GroupDiff] = []
    unchanged: list[GroupName] = []
    for name in sorted(set(before.groups) | set(after.groups)):
        old, new = before.groups.get(name), after.groups.get(name)
        if old is not None and new is not None and _state(old) == _state(new):
            unchanged.append(GroupName(name))
        else:
            groups.append(diff_group(name, old, new))
    return SemanticDiff(tuple(groups), tuple(unchanged))
