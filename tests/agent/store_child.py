"""Release fixtures for the store tests, and the crash-test child process.

As a module it offers :func:`make_release` (deterministic releases per
``(group, sequence)``). As a script it is the child the crash test kills::

    python store_child.py DATA_DIR COMMITS SEED

It opens the store (running recovery), then commits ``COMMITS`` releases,
choosing groups and the occasional schema-violating release from ``SEED``.
On stdout (unbuffered) it writes one ``.`` per mutating file-system step, and
the lines ``b <group> <seq> <good|bad>`` before and ``c <group> <seq>`` after
each commit, so the parent can kill it at a chosen step.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from konorkestra.agent.store import AgentStore, Fs, StagedRelease, ValidationRefusedError
from konorkestra.model.canonical import canonical_bytes, digest_of
from konorkestra.model.types import Digest, GroupName, ReleaseId, Sequence

GROUPS = ("checkout", "search")
APP_SCHEMA = {"type": "object", "properties": {"seq": {"type": "integer"}}, "required": ["seq"]}


def configset(
    name: str, version: int, data: dict[str, Any], *, schema: Any = None, files: Any = None
) -> bytes:
    """Canonical ConfigSet blob bytes (docs/contributing/contracts.md)."""
    spec: dict[str, Any] = {"data": data}
    if schema is not None:
        spec["schema"] = schema
    if files:
        spec["files"] = {p: {"digest": digest_of(b), "size": len(b)} for p, b in files.items()}
    return canonical_bytes(
        {
            "apiVersion": "konorkestra.io/v1",
            "kind": "ConfigSet",
            "metadata": {"name": name, "version": version},
            "spec": spec,
        }
    )


def app_data(group: str, seq: int, *, payload: int = 2000, bad: bool = False) -> dict[str, Any]:
    """The ``app`` ConfigSet's data of a release."""
    return {"seq": "oops" if bad else seq, "group": group, "payload": "x" * payload}


COMMON_DATA = {"region": "eu-west", "retries": 3}
COMMON_FILES = {"common/shared.txt": b"shared by every release\n" * 8}


def expected_config(group: str, seq: int, *, payload: int = 2000) -> dict[str, Any]:
    """What ``current(group).config`` must be for a good release ``seq``."""
    return {"app": app_data(group, seq, payload=payload), "common": COMMON_DATA}


def make_release(
    group: str, seq: int, *, payload: int = 2000, bad: bool = False
) -> tuple[StagedRelease, dict[Digest, bytes]]:
    """A release and every blob it needs (``staged.blobs`` holds them all)."""
    app_files = {f"app/{group}.conf": f"# {group} release {seq}\nlisten {seq}\n".encode() * 4}
    app = configset(
        "app",
        seq * 2 + int(bad),
        app_data(group, seq, payload=payload, bad=bad),
        schema=APP_SCHEMA,
        files=app_files,
    )
    common = configset("common", 1, COMMON_DATA, files=COMMON_FILES)
    refs = (("app", seq * 2 + int(bad), digest_of(app)), ("common", 1, digest_of(common)))
    bundle = canonical_bytes(
        {"group": group, "sequence": seq, "subjects": [r[2] for r in refs], "bad": bad}
    )
    blobs = {digest_of(app): app, digest_of(common): common}
    for b in (*app_files.values(), *COMMON_FILES.values()):
        blobs[digest_of(b)] = b
    staged = StagedRelease(
        GroupName(group),
        Sequence(seq),
        ReleaseId(f"{group}-{seq}"),
        digest_of(b"statement:" + bundle),  # the verifier's statement digest
        bundle,
        refs,  # type: ignore[arg-type]
        blobs,
    )
    return staged, blobs


def expected_files(group: str, seq: int) -> dict[str, bytes]:
    """Raw files under ``files/`` of a good release."""
    app_files = {f"app/{group}.conf": f"# {group} release {seq}\nlisten {seq}\n".encode() * 4}
    return {**app_files, **COMMON_FILES}


class ProgressFs(Fs):
    """Reports every mutating step on stdout as one ``.``."""

    def step(self, op: str, path: str | os.PathLike[str]) -> None:
        os.write(1, b".")


def _say(line: str) -> None:
    os.write(1, line.encode() + b"\n")


def main(argv: list[str]) -> int:
    data, commits, seed = Path(argv[1]), int(argv[2]), int(argv[3])
    rng = random.Random(seed)
    store = AgentStore.open(data, keep=2, log_max_bytes=6000, fs=ProgressFs())
    _say("o")
    for _ in range(commits):
        group = rng.choice(GROUPS)
        cur = store.current(group)
        seq = (cur.sequence if cur else 0) + 1
        bad = rng.random() < 0.15
        staged, blobs = make_release(group, seq, bad=bad)
        need = store.missing_blobs(staged.configsets)
        need = store.missing_blobs(staged.configsets, {d: blobs[d] for d in need})
        first = store.missing_blobs(staged.configsets)
        supplied = {d: blobs[d] for d in [*first, *need]}
        _say(f"b {group} {seq} {'bad' if bad else 'good'}")
        try:
            store.commit(replace(staged, blobs=supplied))
        except ValidationRefusedError:
            _say(f"r {group} {seq}")
            continue
        _say(f"c {group} {seq}")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
