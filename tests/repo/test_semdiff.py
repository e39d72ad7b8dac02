"""The semantic diff's rules SD1–SD12, one test (or more) per rule, by name."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from konorkestra.model.definitions import ConfigSet, FileEntry, Guard, Policy, Step
from konorkestra.model.types import ConfigSetName, GroupName, PolicyName
from konorkestra.repo import semdiff
from konorkestra.repo.resolve import Resolved, ResolvedConfigSet, ResolvedGroup
from konorkestra.repo.semdiff import diff_configsets, diff_policies, diff_resolved
from konorkestra.repo.valuediff import ELIDE_AT, diff_values


def cs(name: str, version: int, data: dict[str, Any], **kw: Any) -> ConfigSet:
    return ConfigSet(ConfigSetName(name), version, data, **kw)


def policy(name: str = "fast", **kw: Any) -> Policy:
    fields: dict[str, Any] = {"strategy": "all-at-once", "steps": (Step(100),)} | kw
    return Policy(PolicyName(name), **fields)


def group(name: str, pol: Policy, *sets: ConfigSet) -> ResolvedGroup:
    members = tuple(ResolvedConfigSet(c.name, c.version, c.digest(), c.blob(), {}, c) for c in sets)
    return ResolvedGroup(GroupName(name), pol, pol.digest(), members)


def state(*groups: ResolvedGroup, extra: tuple[ConfigSet, ...] = ()) -> Resolved:
    sets = [c.configset for g in groups for c in g.configsets] + list(extra)
    return Resolved(
        {g.name: g for g in groups},
        {c.key: ResolvedConfigSet(c.name, c.version, c.digest(), c.blob(), {}, c) for c in sets},
    )


def lines(changes: Any, prefix: str = "") -> list[str]:
    return [c.line(prefix) for c in changes]


WEB1 = cs("web", 1, {"port": 80, "hosts": ["a", "b"]})
WEB2 = cs("web", 2, {"port": 81, "hosts": ["a", "b"]})
DB1 = cs("db", 1, {"pool": 5})


def test_SD1_only_groups_whose_release_changes_are_listed_in_name_order() -> None:
    fast, slow = policy("fast"), policy("slow", approval="manual")
    before = state(group("web", fast, WEB1), group("db", fast, DB1), group("old", fast, DB1))
    after = state(
        group("web", fast, WEB2),  # another ConfigSet version
        group("db", slow, DB1),  # another Policy digest, same ConfigSets
        group("new", fast, DB1),  # added; "old" removed
        group("zz", fast, DB1),
    )
    before.groups["zz"] = group("zz", fast, DB1)  # unchanged
    diff = diff_resolved(before, after)
    assert [(g.name, g.op) for g in diff.groups] == [
        ("db", "change"),
        ("new", "add"),
        ("old", "remove"),
        ("web", "change"),
    ]
    assert diff.unchanged == ("zz",)
    assert diff.changed


def test_SD1_configset_order_in_a_group_does_not_count() -> None:
    fast = policy()
    before = state(group("web", fast, WEB1, DB1))
    after = state(group("web", fast, DB1, WEB1))
    diff = diff_resolved(before, after)
    assert diff.groups == () and diff.unchanged == ("web",) and not diff.changed


def test_SD2_each_configset_of_a_listed_group_once_in_name_order() -> None:
    fast = policy()
    flags = cs("flags", 3, {"x": True})
    before = state(group("web", fast, WEB1, flags, DB1))
    after = state(group("web", fast, WEB2, flags, cs("api", 1, {"a": 1})))
    (g,) = diff_resolved(before, after).groups
    assert [(c.name, c.op, c.old_version, c.new_version) for c in g.configsets] == [
        ("api", "add", None, 1),
        ("db", "remove", 1, None),
        ("flags", "same", 3, 3),
        ("web", "change", 1, 2),
    ]
    assert g.configsets[2].data == ()


def test_SD3_data_compared_key_by_key_and_an_added_configset_against_empty() -> None:
    old = cs("web", 1, {"b": 1, "a": {"x": 1, "y": 2}, "gone": "z"})
    new = cs("web", 2, {"b": 2, "a": {"x": 1, "z": 3}, "c": [1]})
    assert lines(diff_configsets(old, new).data) == [
        "- /a/y: 2",
        "+ /a/z: 3",
        "~ /b: 1 → 2",
        "+ /c: [1]",
        '- /gone: "z"',
    ]
    assert lines(diff_configsets(None, DB1).data) == ["+ /pool: 5"]
    assert lines(diff_configsets(DB1, None).data) == ["- /pool: 5"]


def test_SD4_values_compare_as_json() -> None:
    assert lines(diff_values({"a": True}, {"a": 1})) == ["~ /a: true → 1"]
    assert diff_values({"a": 1}, {"a": 1.0}) == ()
    assert lines(diff_values({"a": "x"}, {"a": {"b": 1}})) == ['~ /a: "x" → {"b": 1}']
    assert lines(diff_values({"a": None}, {"a": False})) == ["~ /a: null → false"]


def test_SD5_lists_by_index() -> None:
    assert lines(diff_values({"l": [1, 2, 3]}, {"l": [1, 9]})) == ["~ /l/1: 2 → 9", "- /l/2: 3"]
    assert lines(diff_values({"l": [1]}, {"l": [1, [2]]})) == ["+ /l/1: [2]"]


def test_SD5_lists_of_named_objects_are_keyed() -> None:
    old = {"up": [{"name": "a", "url": 1}, {"name": "b", "url": 2}, {"name": "c", "url": 3}]}
    new = {"up": [{"name": "new", "url": 0}, {"name": "a", "url": 1}, {"name": "c", "url": 4}]}
    assert lines(diff_values(old, new)) == [
        '- /up/[name=b]: {"name": "b", "url": 2}',
        '+ /up/[name=new]: {"name": "new", "url": 0}',
        "~ /up/[name=c]/url: 3 → 4",
    ]


def test_SD5_reordered_or_duplicate_names_fall_back_to_index() -> None:
    old = {"up": [{"name": "a"}, {"name": "b"}]}
    reordered = {"up": [{"name": "b"}, {"name": "a"}]}
    assert lines(diff_values(old, reordered)) == [
        '~ /up/0/name: "a" → "b"',
        '~ /up/1/name: "b" → "a"',
    ]
    dup = {"up": [{"name": "a", "v": 1}, {"name": "a", "v": 2}]}
    assert lines(diff_values(dup, {"up": [{"name": "a", "v": 1}]})) == [
        '- /up/1: {"name": "a", "v": 2}'
    ]


def test_SD6_paths_are_json_pointers_relative_to_data_or_schema() -> None:
    assert lines(diff_values({"a/b": {"c~d": 1}}, {"a/b": {"c~d": 2}})) == ["~ /a~1b/c~0d: 1 → 2"]
    schema = {"type": "object"}
    added = diff_configsets(cs("w", 1, {}), cs("w", 2, {}, schema=schema))
    assert lines(added.schema, "schema") == ['+ schema: {"type": "object"}']
    changed = diff_configsets(cs("w", 1, {}, schema=schema), cs("w", 2, {}, schema={"type": "x"}))
    assert lines(changed.schema, "schema") == ['~ schema/type: "object" → "x"']


def test_SD7_long_values_are_elided_with_their_length() -> None:
    fits = "x" * (ELIDE_AT - 2)  # quoted: exactly ELIDE_AT characters
    long = "y" * 500
    (short,) = diff_values({"a": 1}, {"a": fits})
    assert short.new is not None and not short.new.elided and short.new.text == f'"{fits}"'
    (change,) = diff_values({"a": 1}, {"a": long})
    assert change.new is not None and change.new.elided
    assert change.new.text == '"' + "y" * (ELIDE_AT - 1) + "…"
    assert change.line() == f'~ /a: 1 → "{"y" * (ELIDE_AT - 1)}… (502 chars)'
    assert change.to_json() == {"op": "change", "path": "/a", "old": "1", "new": change.new.text,
                                "new_chars": 502}  # fmt: skip


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(["int", "bool", "str", "null", "float"] + ["obj", "list"] * (depth < 3))
    if kind == "obj":
        return {rng.choice("abcd"): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if kind == "list":
        if rng.random() < 0.5:
            return [
                {"name": rng.choice("xyz"), "v": _random_value(rng, depth + 1)}
                for _ in range(rng.randint(0, 3))
            ]
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {
        "int": lambda: rng.randint(0, 2),
        "bool": lambda: rng.random() < 0.5,
        "str": lambda: rng.choice(["", "a", "1"]),
        "null": lambda: None,
        "float": lambda: rng.choice([0.0, 1.0, 1.5]),
    }[kind]()


def test_SD8_nothing_goes_unseen() -> None:
    rng = random.Random(15)
    for _ in range(3000):
        old, new = {"d": _random_value(rng)}, {"d": _random_value(rng)}
        same = json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)
        if not same and old == new:  # 1 == 1.0 and True == 1 in Python; JSON decides
            same = cs("c", 1, old).digest() == cs("c", 1, new).digest()
        assert (diff_values(old, new) == ()) == same, (old, new)
        assert (cs("c", 1, old).digest() == cs("c", 1, new).digest()) == same
    bump = diff_configsets(cs("w", 1, {"a": 1}), cs("w", 2, {"a": 1}))
    assert bump.op == "change" and not bump.content_changed


def test_SD9_raw_files_by_digest_and_size() -> None:
    conf, conf2, extra = FileEntry.of(b"a"), FileEntry.of(b"bb"), FileEntry.of(b"c")
    old = cs("w", 1, {}, files={"z.conf": conf, "a.conf": conf, "same": extra})
    new = cs("w", 2, {}, files={"z.conf": conf2, "b.conf": extra, "same": extra})
    d = diff_configsets(old, new)
    assert [(f.op, f.path, f.old, f.new) for f in d.files] == [
        ("remove", "a.conf", conf, None),
        ("add", "b.conf", None, extra),
        ("change", "z.conf", conf, conf2),
    ]
    assert d.files[2].to_json()["new"] == {"digest": conf2.digest, "size": 2}
    assert d.data == () and d.content_changed


def test_SD10_policy_fields_before_and_after_in_a_fixed_order() -> None:
    old = policy(
        "canary",
        strategy="canary",
        steps=(Step(5, 300, {"ring": "canary"}), Step(100)),
        guards=(Guard("error_rate", 0.02),),
        approval="manual",
    )
    new = policy("canary", strategy="linear", steps=(Step(50, 90), Step(100)), on_failure="pause")
    d = diff_policies(old, new)
    assert [(f.field, f.old, f.new) for f in d.fields] == [
        ("strategy", "canary", "linear"),
        ("steps", "5% bake 5m on ring=canary, 100%", "50% bake 1m30s, 100%"),
        ("guards", "error_rate max 0.02", "none"),
        ("onFailure", "rollback", "pause"),
        ("approval", "manual", "auto"),
    ]
    fast = policy()
    (g,) = diff_resolved(state(group("w", fast, WEB1)), state(group("w", fast, WEB2))).groups
    assert g.policy.old == g.policy.new == fast and g.policy.fields == ()
    assert g.policy.to_json()["after"]["approval"] == "auto"
    (added,) = diff_resolved(state(), state(group("w", fast, WEB1))).groups
    assert added.policy.old is None and added.policy.fields[0].new == "fast"


def test_SD11_what_no_group_resolves_to_is_not_in_the_diff() -> None:
    fast = policy()
    before = state(group("web", fast, WEB1))
    after = state(group("web", fast, WEB1), extra=(WEB2, cs("unused", 1, {})))
    diff = diff_resolved(before, after)
    assert diff.groups == () and diff.unchanged == ("web",)


def test_SD12_same_inputs_same_diff_whatever_the_order() -> None:
    fast, slow = policy(), policy("slow", approval="manual")
    a = cs("web", 1, {"x": 1, "y": {"p": 1, "q": 2}})
    b = cs("web", 2, {"y": {"q": 3, "p": 1}, "x": 2})
    one = diff_resolved(state(group("web", fast, a), group("db", fast, DB1)),
                        state(group("web", slow, b)))  # fmt: skip
    two = diff_resolved(state(group("db", fast, DB1), group("web", fast, a)),
                        state(group("web", slow, b)))  # fmt: skip
    assert one == two
    assert json.dumps(one.to_json()) == json.dumps(two.to_json())


def test_every_stated_rule_has_a_test() -> None:
    stated = set(re.findall(r"\*\*(SD\d+)\*\*", semdiff.__doc__ or ""))
    tested = set(re.findall(r"def test_(SD\d+)_", Path(__file__).read_text()))
    assert stated and stated == tested
