"""The agent store's numbered rules (package docstring), one test group per rule."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import json
import os
import stat
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from konorkestra.agent.store import (
    AgentStore,
    BlobIntegrityError,
    BlobMissingError,
    Fs,
    InvalidReleaseError,
    ReleaseView,
    RollbackRefusedError,
    StagedRelease,
    ValidationRefusedError,
)
from konorkestra.model.canonical import canonical_bytes, digest_of
from konorkestra.model.release import ConfigSetRef, PolicyRef
from konorkestra.model.types import Digest

_spec = importlib.util.spec_from_file_location(
    "store_child", Path(__file__).with_name("store_child.py")
)
assert _spec is not None and _spec.loader is not None
child = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(child)
make_release = child.make_release


def blob_path(data: Path, digest: str) -> Path:
    return data / "blobs" / "sha256" / digest[7:9] / digest[7:]


def tree(data: Path) -> set[str]:
    return {str(p.relative_to(data)) for p in data.rglob("*")}


def corrupt(path: Path, content: bytes = b"garbage") -> None:
    os.chmod(path, 0o644)
    path.write_bytes(content)


class Recorder(Fs):
    def __init__(self) -> None:
        self.ops: list[tuple[str, str]] = []

    def step(self, op: str, path: str | os.PathLike[str]) -> None:
        self.ops.append((op, str(path)))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


# -- rule 1: verify before write ------------------------------------------------


def _with_configset(blob: bytes, name: str = "app", version: int = 1) -> StagedRelease:
    bundle = b"bundle"
    return StagedRelease(
        "g", 1, "g-1", digest_of(b"statement"), bundle, ((name, version, digest_of(blob)),),
        {digest_of(blob): blob},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda s, b: replace(s, release_digest="sha256:x"), InvalidReleaseError),
        (lambda s, b: replace(s, bundle=b""), InvalidReleaseError),
        (lambda s, b: replace(s, blobs={**b, s.configsets[0].digest: b"x"}), BlobIntegrityError),
        (lambda s, b: replace(s, group="../etc"), InvalidReleaseError),
        (lambda s, b: replace(s, sequence=0), InvalidReleaseError),
        (lambda s, b: replace(s, configsets=(*s.configsets, s.configsets[0])), InvalidReleaseError),
        (lambda s, b: replace(s, blobs={}), BlobMissingError),
    ],
    ids=[
        "release-digest",
        "no-bundle",
        "configset-digest",
        "group-name",
        "sequence",
        "dup-configset",
        "missing",
    ],
)
def test_rule01_verify_before_write_refuses_bad_input(data: Path, mutate: Any, error: type) -> None:
    store = AgentStore.open(data)
    before = tree(data)
    staged, blobs = make_release("checkout", 1)
    with pytest.raises(error):
        store.commit(mutate(staged, blobs))
    assert tree(data) == before and store.current("checkout") is None


def test_rule01_file_blob_must_match_declared_size(data: Path) -> None:
    raw = b"listen 80\n"
    cs = canonical_bytes({"apiVersion": "konorkestra.io/v1", "kind": "ConfigSet",
                          "metadata": {"name": "app", "version": 1}, "spec": {"data": {},
                          "files": {"a.conf": {"digest": digest_of(raw), "size": 3}}}})  # fmt: skip
    staged = _with_configset(cs)
    store = AgentStore.open(data)
    with pytest.raises(BlobIntegrityError, match="declared 3"):
        store.commit(replace(staged, blobs={**staged.blobs, digest_of(raw): raw}))


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/./b", "a//b", "a\\b", "e\u0301"])
def test_rule01_unsafe_file_paths_are_refused(data: Path, path: str) -> None:
    raw = b"x"
    cs = canonical_bytes({"apiVersion": "konorkestra.io/v1", "kind": "ConfigSet",
                          "metadata": {"name": "app", "version": 1}, "spec": {"data": {},
                          "files": {path: {"digest": digest_of(raw), "size": 1}}}})  # fmt: skip
    with pytest.raises(InvalidReleaseError):
        AgentStore.open(data).commit(_with_configset(cs))


def test_rule01_configset_blob_must_name_its_ref(data: Path) -> None:
    cs = child.configset("other", 1, {})
    with pytest.raises(InvalidReleaseError, match="is not app@1"):
        AgentStore.open(data).commit(_with_configset(cs))


# -- rule 2: content addressing -------------------------------------------------


def test_rule02_blobs_are_stored_once_by_digest_and_read_only(data: Path) -> None:
    store = AgentStore.open(data)
    staged, blobs = make_release("checkout", 1)
    store.commit(staged)
    for d, content in [*blobs.items(), (staged.bundle_digest, staged.bundle)]:
        p = blob_path(data, d)
        assert p.read_bytes() == content
        assert stat.S_IMODE(p.stat().st_mode) == 0o444
    shared = blob_path(data, staged.configsets[1].digest)
    ino = shared.stat().st_ino
    staged2, _ = make_release("checkout", 2)
    rec = Recorder()
    store.close()
    store = AgentStore.open(data, fs=rec)
    store.commit(staged2)  # supplies the shared blob again; it is already held
    assert shared.stat().st_ino == ino
    assert not any(p.startswith(str(shared.parent) + "/.tmp") for _, p in rec.ops)


# -- rule 3: two-step fetch -----------------------------------------------------


def test_rule03_missing_blobs_asks_configsets_then_files_then_nothing(data: Path) -> None:
    store = AgentStore.open(data)
    staged, blobs = make_release("checkout", 1)
    refs = staged.configsets
    step1 = store.missing_blobs(refs)
    assert step1 == [r.digest for r in refs]
    fetched = {d: blobs[d] for d in step1}
    step2 = store.missing_blobs(refs, fetched)
    assert set(step2) == set(blobs) - set(step1)
    fetched |= {d: blobs[d] for d in step2}
    assert store.missing_blobs(refs, fetched) == []
    store.commit(replace(staged, blobs=fetched))
    # Release 2 shares "common" and its file: only the new app blobs are asked for.
    staged2, blobs2 = make_release("checkout", 2)
    need = store.missing_blobs(staged2.configsets)
    need += store.missing_blobs(staged2.configsets, {d: blobs2[d] for d in need})
    assert set(need) == set(blobs2) - set(blobs)
    store.commit(replace(staged2, blobs={d: blobs2[d] for d in need}))
    assert store.current("checkout").sequence == 2  # type: ignore[union-attr]


def test_rule03_fetched_configset_blob_is_verified(data: Path) -> None:
    store = AgentStore.open(data)
    staged, _ = make_release("checkout", 1)
    with pytest.raises(BlobIntegrityError):
        store.missing_blobs(staged.configsets, {staged.configsets[0].digest: b"{}"})


# -- rule 4: monotonic sequences --------------------------------------------------


def test_rule04_sequence_at_or_below_high_water_is_refused(data: Path) -> None:
    store = AgentStore.open(data)
    store.commit(make_release("checkout", 2)[0])
    assert store.high_water("checkout") == (2, make_release("checkout", 2)[0].release_digest)
    with pytest.raises(RollbackRefusedError):
        store.commit(make_release("checkout", 1)[0])
    other = make_release("checkout", 2, payload=5)[0]
    with pytest.raises(RollbackRefusedError):
        store.commit(other)
    assert store.current("checkout").sequence == 2  # type: ignore[union-attr]


def test_rule04_same_sequence_and_digest_is_a_no_op(data: Path) -> None:
    store = AgentStore.open(data)
    staged = make_release("checkout", 2)[0]
    first = store.commit(staged)
    size = store.log.size()
    assert store.commit(staged) == first
    assert store.log.size() == size


# -- rule 5: commit order ---------------------------------------------------------


def test_rule05_commit_steps_happen_in_order(data: Path) -> None:
    rec = Recorder()
    store = AgentStore.open(data, fs=rec)
    rec.ops.clear()
    staged = make_release("checkout", 1)[0]
    store.commit(staged)
    ops = rec.ops

    def at(pred: Any) -> list[int]:
        return [i for i, (op, p) in enumerate(ops) if pred(op, p)]

    blob_dirs = {str(blob_path(data, d).parent) for d in [staged.bundle_digest, *staged.blobs]}
    release = str(data / "releases" / "checkout" / "1")
    # Round 1: blob files, STAGED and the release directory's files and dirs, together.
    log_writes = at(lambda op, p: op == "write" and "/log/" in p)
    assert len(log_writes) == 2  # STAGED, COMMITTED
    syncs = at(lambda op, p: op == "fdatasync")
    assert len(syncs) == 2 and log_writes[0] < syncs[0] < log_writes[1] < syncs[1]
    round1 = [syncs[0], *at(lambda op, p: op == "fsync" and "/.tmp-" in p)]
    release_files = [f for f in Path(release).rglob("*") if f.is_file()]
    assert len(round1) == 1 + len(staged.blobs) + 1 + len(release_files)  # blobs + bundle
    renames = at(lambda op, p: op == "rename" and ("/blobs/" in p or p == release))
    assert max(round1) < min(renames)
    # Round 2: renamed into place, their directories fsynced, before the flip.
    placed = at(
        lambda op, p: op == "fsync_dir" and (p in blob_dirs or p == str(Path(release).parent))
    )
    assert len(placed) == len(blob_dirs) + 1
    flipped = at(lambda op, p: op == "rename" and p.endswith("/current/checkout"))
    assert max(renames) < min(placed) and max(placed) < flipped[0]
    # Round 3: the flip and COMMITTED become durable together; the marks file follows.
    flip_synced = at(lambda op, p: op == "fsync_dir" and p.endswith("/current"))
    assert flipped[0] < log_writes[1] < min(flip_synced[0], syncs[1])
    hw = at(lambda op, p: "high_water.json" in p or "/trust/" in p)
    assert [ops[i][0] for i in hw] == ["open", "write", "rename"]  # a mirror: no fsync
    assert max(flip_synced[0], syncs[1]) < hw[0]
    assert store.timings.keys() == {"prepare", "validate", "stage", "place", "flip", "finish"}


def test_rule05_marks_are_rebuilt_from_the_log(data: Path) -> None:
    store = AgentStore.open(data)
    store.commit(make_release("checkout", 1)[0])
    rel = store.commit(make_release("checkout", 2)[0])
    store.close()
    (data / "trust" / "high_water.json").write_bytes(b"")  # a power loss may leave this
    store = AgentStore.open(data)
    assert store.high_water("checkout") == (2, rel.digest)
    assert json.loads((data / "trust" / "high_water.json").read_bytes())["groups"] == {
        "checkout": {"sequence": 2, "digest": rel.digest}
    }
    with pytest.raises(RollbackRefusedError):
        store.commit(make_release("checkout", 1)[0])
    store.close()


# -- rule 6: refusal changes nothing served -------------------------------------


def test_rule06_schema_violation_is_refused_and_nothing_changes(data: Path) -> None:
    store = AgentStore.open(data)
    good = store.commit(make_release("checkout", 1)[0])
    before, log_size = tree(data), store.log.size()
    with pytest.raises(
        ValidationRefusedError, match=r'app@5: /seq: "oops" is not of type "integer"'
    ):
        store.commit(make_release("checkout", 2, bad=True)[0])
    assert store.current("checkout") == good
    assert store.high_water("checkout") == (1, good.digest)
    assert not (data / "releases" / "checkout" / "2").exists()
    assert tree(data) == before and store.log.size() == log_size  # validated before any write
    store.close()
    store = AgentStore.open(data)
    assert store.current("checkout") == good
    assert store.commit(make_release("checkout", 2)[0]).sequence == 2


def test_rule06_custom_validator_refuses_and_none_skips(data: Path) -> None:
    def no(view: ReleaseView) -> None:
        raise ValueError(f"not today: {sorted(view.config)}")

    store = AgentStore.open(data)
    with pytest.raises(ValidationRefusedError, match="not today: \\['app', 'common'\\]"):
        store.commit(make_release("checkout", 1)[0], validate=no)
    assert store.current("checkout") is None
    assert store.commit(make_release("checkout", 1, bad=True)[0], validate=None).sequence == 1


# -- rule 7: the pointer is atomic ------------------------------------------------


def test_rule07_readers_never_see_the_pointer_missing(data: Path) -> None:
    store = AgentStore.open(data, keep=3)
    store.commit(make_release("checkout", 1)[0])
    link = data / "current" / "checkout"
    done, seen, missing = threading.Event(), set(), []

    def reader() -> None:
        while not done.is_set():
            try:
                seen.add(os.readlink(link))
                json.loads((link / "release.json").read_bytes())
            except OSError as exc:
                missing.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for seq in range(2, 30):
            store.commit(make_release("checkout", seq)[0])
    finally:
        done.set()
        t.join(timeout=10)
    assert not missing
    assert len(seen) > 1 and os.readlink(link) == "../releases/checkout/29"


# -- rule 8: release.json is the served release ---------------------------------


def test_rule08_release_json_matches_protocol_fallback_format(data: Path) -> None:
    store = AgentStore.open(data)
    cur = store.commit(make_release("checkout", 3)[0])
    doc = json.loads((data / "current" / "checkout" / "release.json").read_bytes())
    assert doc == {
        "group": "checkout", "release": "checkout-3", "sequence": 3, "digest": cur.digest,
        "committed_at": cur.committed_at, "config": child.expected_config("checkout", 3),
    }  # fmt: skip
    assert cur.path == data / "releases" / "checkout" / "3"
    assert json.loads((cur.path / "config" / "app.json").read_bytes()) == cur.config["app"]
    for path, content in child.expected_files("checkout", 3).items():
        f = data / "current" / "checkout" / "files" / path
        assert f.read_bytes() == content and stat.S_IMODE(f.stat().st_mode) == 0o444
    assert store.groups() == ["checkout"]


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([1.0, 2.5, -0.0])
    | st.sampled_from(["", "a", "b", "1"]),
    lambda kids: st.lists(kids, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), kids, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["app", "b", "common", "z-1"]), _json_values, max_size=4),
    st.text(max_size=12),
)
@example({"app": {"config": None}, "b": 1}, '"config":null}')
def test_rule08_release_json_is_the_canonical_dump_of_the_release(
    config: dict[str, Any], committed_at: str
) -> None:
    from konorkestra.agent.store.layout import RELEASE_JSON, render
    from konorkestra.agent.store.records import ReleaseRecord

    rec = ReleaseRecord(
        "g", 7, "g-7", Digest("sha256:" + "1" * 64), Digest("sha256:" + "2" * 64), (), (),
        committed_at,
    )  # fmt: skip
    whole = {
        "group": "g", "release": "g-7", "sequence": 7, "digest": rec.digest,
        "committed_at": committed_at, "config": config,
    }  # fmt: skip
    dump = json.dumps(whole, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert render(rec, config)[RELEASE_JSON] == dump.encode() + b"\n"


# -- rule 9: recovery -------------------------------------------------------------


def _segment(data: Path) -> Path:
    return max((data / "log").glob("*.log"), key=lambda p: int(p.stem))


def test_rule09_torn_tail_is_truncated(data: Path) -> None:
    store = AgentStore.open(data)
    store.commit(make_release("checkout", 1)[0])
    store.close()
    seg = _segment(data)
    good_size = seg.stat().st_size
    with seg.open("ab") as f:
        f.write(b"KLR1\x00\x00\x01\x00garbage")
    store = AgentStore.open(data)
    assert seg.stat().st_size == good_size
    assert store.current("checkout").sequence == 1  # type: ignore[union-attr]
    assert store.commit(make_release("checkout", 2)[0]).sequence == 2


def test_rule09_lost_committed_record_is_finished_from_the_pointer(data: Path) -> None:
    store = AgentStore.open(data)
    store.commit(make_release("checkout", 1)[0])
    store.commit(make_release("checkout", 2)[0])
    store.close()
    seg = _segment(data)
    os.truncate(seg, seg.stat().st_size - 5)  # tears the COMMITTED record of release 2
    (data / "trust" / "high_water.json").unlink()
    store = AgentStore.open(data)
    assert store.current("checkout").sequence == 2  # type: ignore[union-attr]
    assert store.high_water("checkout")[0] == 2  # type: ignore[index]


def test_rule09_staged_without_flip_is_rolled_back(data: Path) -> None:
    class FailFlip(Fs):
        def step(self, op: str, path: str | os.PathLike[str]) -> None:
            if op == "symlink" and "checkout" in str(path) and "pending" in flags:
                raise OSError(5, "flip failed")

    flags = set()
    store = AgentStore.open(data, fs=FailFlip())
    store.commit(make_release("checkout", 1)[0])
    flags.add("pending")
    with pytest.raises(Exception, match="flip failed"):
        store.commit(make_release("checkout", 2)[0])
    assert (data / "releases" / "checkout" / "2").exists()
    store.close()
    store = AgentStore.open(data)
    assert store.current("checkout").sequence == 1  # type: ignore[union-attr]
    assert not (data / "releases" / "checkout" / "2").exists()
    assert store.commit(make_release("checkout", 2)[0]).sequence == 2


def test_rule09_lost_or_outdated_pointer_is_restored(data: Path) -> None:
    with AgentStore.open(data) as store:
        store.commit(make_release("checkout", 1)[0])
        store.commit(make_release("checkout", 2)[0])
    link = data / "current" / "checkout"
    link.unlink()
    link.symlink_to("../releases/checkout/1")  # e.g. a backup restored an older link
    with AgentStore.open(data) as store:
        assert store.current("checkout").sequence == 2  # type: ignore[union-attr]
    assert os.readlink(link) == "../releases/checkout/2"
    link.unlink()
    with AgentStore.open(data) as store:
        assert store.current("checkout").sequence == 2  # type: ignore[union-attr]
    assert os.readlink(link) == "../releases/checkout/2"


def test_rule09_deleted_log_is_rebuilt_from_release_manifests(data: Path) -> None:
    store = AgentStore.open(data, keep=3)
    for seq in (1, 2, 3):
        store.commit(make_release("checkout", seq)[0])
    store.close()
    for p in (data / "log").iterdir():
        p.unlink()
    store = AgentStore.open(data, keep=3)
    assert store.current("checkout").sequence == 3  # type: ignore[union-attr]
    assert [r.sequence for r in store.history("checkout")] == [3, 2, 1]
    with pytest.raises(RollbackRefusedError):
        store.commit(make_release("checkout", 3, payload=1)[0])


# -- rule 10: repair ----------------------------------------------------------------


def test_rule10_corrupt_blob_is_refetched(data: Path) -> None:
    staged, blobs = make_release("checkout", 1)
    with AgentStore.open(data) as store:
        store.commit(staged)
    victim = blob_path(data, staged.configsets[0].digest)
    corrupt(victim)
    asked: list[Digest] = []

    def fetch(d: Digest) -> bytes:
        asked.append(d)
        return blobs[d]

    store = AgentStore.open(data, fetch_blob=fetch)
    assert asked == [staged.configsets[0].digest]
    assert digest_of(victim.read_bytes()) == staged.configsets[0].digest
    assert not store.current("checkout").needs_repair  # type: ignore[union-attr]


def test_rule10_unrepairable_blob_is_served_but_flagged(data: Path) -> None:
    staged, blobs = make_release("checkout", 1)
    with AgentStore.open(data) as store:
        store.commit(staged)
    bad = staged.configsets[0].digest
    corrupt(blob_path(data, bad))

    def offline(d: Digest) -> bytes:
        raise ConnectionError("center unreachable")

    store = AgentStore.open(data, fetch_blob=offline)
    cur = store.current("checkout")
    assert cur is not None and cur.needs_repair
    assert cur.config == child.expected_config("checkout", 1)
    assert store.repair() == {"checkout": {bad}}
    store.fetch_blob = lambda d: blobs[d]
    assert store.repair() == {}
    assert not store.current("checkout").needs_repair  # type: ignore[union-attr]


def test_rule10_damaged_release_json_is_rebuilt_from_blobs(data: Path) -> None:
    store = AgentStore.open(data)
    before = store.commit(make_release("checkout", 1)[0])
    corrupt(before.path / "release.json", b"{")
    corrupt(before.path / "files" / "common" / "shared.txt", b"")
    store.close()
    with AgentStore.open(data) as again:
        assert again.current("checkout") == before


def test_rule10_unrepairable_release_raises_until_replaced(data: Path) -> None:
    from konorkestra.agent.store import ReleaseUnavailableError

    staged, _ = make_release("checkout", 1)
    with AgentStore.open(data) as store:
        cur = store.commit(staged)
    corrupt(cur.path / "release.json", b"{")
    corrupt(blob_path(data, staged.configsets[0].digest))
    store = AgentStore.open(data)
    with pytest.raises(ReleaseUnavailableError, match="damaged") as info:
        store.current("checkout")
    assert "hint:" in info.value.diagnostics()
    assert store.commit(make_release("checkout", 2)[0]).sequence == 2
    assert store.current("checkout").sequence == 2  # type: ignore[union-attr]


# -- rule 11: garbage collection --------------------------------------------------------


def test_rule11_keeps_newest_releases_and_their_blobs_only(data: Path) -> None:
    store = AgentStore.open(data, keep=2)
    releases = [make_release("checkout", seq) for seq in range(1, 6)]
    for staged, _ in releases:
        store.commit(staged)
    assert [r.sequence for r in store.history("checkout")] == [5, 4]
    assert sorted(p.name for p in (data / "releases" / "checkout").iterdir()) == ["4", "5"]
    held = {p.name for p in (data / "blobs" / "sha256").rglob("*") if p.is_file()}
    want = set()
    for staged, blobs in releases[3:]:
        want |= {d[7:] for d in [*blobs, staged.bundle_digest]}
    assert held == want
    # A rollback to release 4's content is a new release: no network needed.
    staged4, _ = releases[3]
    rollback = replace(staged4, sequence=6, release_id="checkout-6", blobs={})
    assert store.missing_blobs(rollback.configsets) == []
    assert store.commit(rollback).sequence == 6


# -- rule 12: compaction ------------------------------------------------------------------


def test_rule12_log_is_compacted_into_a_snapshot(data: Path) -> None:
    store = AgentStore.open(data, keep=3, log_max_bytes=3000)
    for seq in range(1, 8):
        store.commit(make_release("checkout", seq)[0])
        store.commit(make_release("search", seq)[0])
    assert (data / "log" / "snapshot.json").exists()
    assert len(list((data / "log").glob("*.log"))) == 1
    assert store.log.size() <= 3000 + 4096
    store.close()
    again = AgentStore.open(data, keep=3, log_max_bytes=3000)
    for group in ("checkout", "search"):
        assert again.current(group).sequence == 7  # type: ignore[union-attr]
        assert [r.sequence for r in again.history(group)] == [7, 6, 5]


# -- rule 13: I/O errors stop the store -------------------------------------------------


def test_rule13_fsync_error_is_not_retried(data: Path) -> None:
    from konorkestra.agent.store import StoreBrokenError

    class FailFsync(Fs):
        def step(self, op: str, path: str | os.PathLike[str]) -> None:
            if op == "fdatasync":
                raise OSError(5, "EIO")

    store = AgentStore.open(data, fs=FailFsync())
    with pytest.raises(StoreBrokenError, match="EIO") as info:
        store.commit(make_release("checkout", 1)[0])
    assert "reopen" in info.value.diagnostics()
    with pytest.raises(StoreBrokenError, match="unusable"):
        store.commit(make_release("checkout", 1)[0])
    store.close()
    with AgentStore.open(data) as again:
        assert again.commit(make_release("checkout", 1)[0]).sequence == 1


# -- one store per data directory --------------------------------------------------------


def test_second_store_on_the_same_data_dir_is_refused(data: Path) -> None:
    from konorkestra.agent.store import StoreLockedError

    with AgentStore.open(data) as store:
        store.commit(make_release("checkout", 1)[0])
        with pytest.raises(StoreLockedError, match="in use"):
            AgentStore.open(data)
    with AgentStore.open(data) as again:  # released on close
        assert again.current("checkout").sequence == 1  # type: ignore[union-attr]


# -- the examples in the docstrings run -------------------------------------------------


@pytest.mark.parametrize(
    "module",
    ["__init__", "fsutil", "records", "prepare", "blobs", "txlog", "highwater", "state", "validate",
     "errors"],
)  # fmt: skip
def test_docstring_examples(module: str) -> None:
    name = "konorkestra.agent.store" + ("" if module == "__init__" else f".{module}")
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0


# -- contract with konorkestra.trust -----------------------------------------------------


def test_verified_release_commits_and_marks_agree_with_the_verifier(data: Path) -> None:
    import datetime as dt

    trust = pytest.importorskip("konorkestra.trust")
    now = dt.datetime.now(dt.UTC)
    root_key, release_key, ts_key = (trust.Signer.generate() for _ in range(3))
    root = trust.TrustRoot.from_bytes(
        trust.make_root(
            root=[root_key.public_key], release=[release_key.public_key],
            timestamp=[ts_key.public_key], expires=now + dt.timedelta(days=1),
            signers=[root_key],
        )
    )  # fmt: skip
    blob = child.configset("checkout-api", 3, {"timeoutMs": 800})
    statement = trust.ReleaseStatement.create(
        group="checkout", sequence=1,
        configsets=[ConfigSetRef("checkout-api", 3, digest_of(blob), len(blob))],
        policy=PolicyRef("canary", "sha256:" + "cd" * 32),
        source=trust.Source("repo", "0" * 40, "Ana <ana@example.org>", now), now=now,
    )  # fmt: skip
    bundle = trust.sign_release(statement, [release_key])

    def staged(v: Any) -> StagedRelease:
        return StagedRelease(
            v.statement.group, v.statement.sequence, v.release_id, v.statement_digest,
            bundle, v.statement.configsets, {digest_of(blob): blob},
        )  # fmt: skip

    with AgentStore.open(data) as store:
        v = trust.Verifier(root, {}, now).verify_release(bundle, {digest_of(blob): blob})
        first = store.commit(staged(v))
        assert first.config == {"checkout-api": {"timeoutMs": 800}}
        assert blob_path(data, digest_of(bundle)).read_bytes() == bundle
        seq, digest = store.high_water("checkout")  # type: ignore[misc]
        marks = {"checkout": trust.HighWaterMark(seq, digest)}
        again = trust.Verifier(root, marks, now).verify_release(bundle)
        assert again.redelivery
        assert store.commit(staged(again)) == first
