"""The commit -> releases plan, rule by rule (``konorkestra/center/ingest/plan.py``).

No database, no Git: Group states in, the Groups to release out.
"""

from __future__ import annotations

from konorkestra.center.ingest.plan import GroupState, StateKey, plan_releases, unchanged
from konorkestra.model.release import ConfigSetRef
from konorkestra.model.types import ConfigSetName, Digest, GroupName, PolicyName

CANARY = Digest("sha256:" + "c1" * 32)
CANARY_2 = Digest("sha256:" + "c2" * 32)


def ref(name: str, version: int, fill: str = "ab", size: int = 10) -> ConfigSetRef:
    return ConfigSetRef(ConfigSetName(name), version, Digest("sha256:" + fill * 32), size)


def state(group: str, *refs: ConfigSetRef, policy_digest: Digest = CANARY) -> GroupState:
    return GroupState(GroupName(group), refs, PolicyName("canary"), policy_digest)


def keys(*states: GroupState) -> dict[GroupName, StateKey]:
    return {s.group: s.key for s in states}


def planned(
    previous: dict[GroupName, StateKey], current: list[GroupState], released: set[str]
) -> list[str]:
    return [s.group for s in plan_releases(previous, current, {GroupName(g) for g in released})]


def test_P1_the_first_commit_releases_every_group() -> None:
    current = [state("checkout", ref("api", 1)), state("search", ref("index", 1))]
    assert planned({}, current, set()) == ["checkout", "search"]


def test_P1_a_new_group_is_released() -> None:
    old = state("checkout", ref("api", 1))
    new = state("search", ref("index", 1))
    assert planned(keys(old), [old, new], {"checkout"}) == ["search"]


def test_P1_a_group_restored_after_deletion_is_released_though_it_has_releases() -> None:
    restored = state("search", ref("index", 1))
    other = state("checkout", ref("api", 1))
    assert planned(keys(other), [other, restored], {"checkout", "search"}) == ["search"]


def test_P2_a_new_configset_version_releases_the_group() -> None:
    before = state("checkout", ref("api", 1), ref("web", 1, "cd"))
    after = state("checkout", ref("api", 2, "ee"), ref("web", 1, "cd"))
    assert planned(keys(before), [after], {"checkout"}) == ["checkout"]


def test_P2_an_added_or_removed_configset_releases_the_group() -> None:
    one = state("checkout", ref("api", 1))
    two = state("checkout", ref("api", 1), ref("web", 1, "cd"))
    assert planned(keys(one), [two], {"checkout"}) == ["checkout"]
    assert planned(keys(two), [one], {"checkout"}) == ["checkout"]


def test_P2_another_digest_for_the_same_version_releases_the_group() -> None:
    before = state("checkout", ref("api", 1, "ab"))
    after = state("checkout", ref("api", 1, "ef"))
    assert planned(keys(before), [after], {"checkout"}) == ["checkout"]


def test_P3_changed_policy_digest_releases_the_group() -> None:
    before = state("checkout", ref("api", 1), policy_digest=CANARY)
    after = state("checkout", ref("api", 1), policy_digest=CANARY_2)
    assert planned(keys(before), [after], {"checkout"}) == ["checkout"]


def test_P4_an_unchanged_group_never_released_is_released() -> None:
    same = state("checkout", ref("api", 1))
    assert planned(keys(same), [same], set()) == ["checkout"]


def test_P5_an_unchanged_group_with_a_release_is_not_released_again() -> None:
    same = state("checkout", ref("api", 1))
    changed = state("search", ref("index", 2))
    previous = keys(same, state("search", ref("index", 1)))
    assert planned(previous, [same, changed], {"checkout", "search"}) == ["search"]


def test_P6_configset_order_and_size_do_not_count() -> None:
    before = state("checkout", ref("api", 1, size=10), ref("web", 1, "cd", size=20))
    after = state("checkout", ref("web", 1, "cd", size=99), ref("api", 1, size=1))
    assert before.key == after.key
    assert planned(keys(before), [after], {"checkout"}) == []


def test_P6_the_state_key_is_the_configset_versions_and_the_policy_digest() -> None:
    key = state("checkout", ref("web", 2, "cd"), ref("api", 1)).key
    assert key == StateKey(
        (
            (ConfigSetName("api"), 1, Digest("sha256:" + "ab" * 32)),
            (ConfigSetName("web"), 2, Digest("sha256:" + "cd" * 32)),
        ),
        CANARY,
    )


def test_P7_a_group_the_commit_no_longer_defines_gets_no_release() -> None:
    kept = state("checkout", ref("api", 1))
    gone = state("search", ref("index", 1))
    assert planned(keys(kept, gone), [kept], {"checkout", "search"}) == []
    assert planned(keys(kept, gone), [kept], set()) == ["checkout"]


def test_P8_one_release_per_group_in_group_name_order() -> None:
    current = [state(g, ref("api", 1)) for g in ("search", "auth", "checkout")]
    plan = plan_releases({}, current, ())
    assert [s.group for s in plan] == ["auth", "checkout", "search"]
    assert plan == sorted(current, key=lambda s: s.group)


def test_P9_only_unchanged_groups_need_the_stores_answer() -> None:
    same = state("checkout", ref("api", 1))
    changed = state("search", ref("index", 2))
    new = state("auth", ref("login", 1))
    previous = keys(same, state("search", ref("index", 1)))
    assert unchanged(previous, [same, changed, new]) == ["checkout"]


def test_P9_whether_a_changed_group_was_released_does_not_matter() -> None:
    before = state("checkout", ref("api", 1))
    after = state("checkout", ref("api", 2, "ee"))
    assert planned(keys(before), [after], {"checkout"}) == ["checkout"]
    assert planned(keys(before), [after], set()) == ["checkout"]
