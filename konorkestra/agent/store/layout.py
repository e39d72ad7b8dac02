"""Release directories and the ``current/<group>`` pointers.

Layout (see docs/adr/0004-agent-store-layout.md)::

    <data>/releases/<group>/<sequence>/release.json      protocol.md fallback format
    <data>/releases/<group>/<sequence>/config/<name>.json   one ConfigSet's spec.data
    <data>/releases/<group>/<sequence>/files/<path>      raw files, 0444
    <data>/releases/<group>/<sequence>/manifest.json     the ReleaseRecord (self-description)
    <data>/current/<group> -> ../releases/<group>/<sequence>

Invariants:

* A release directory is built under a ``.tmp-`` name, every file and
  directory fsynced, then renamed into place and its parent fsynced: a
  directory named ``<sequence>`` is always complete. :meth:`Layout.build`
  and :meth:`Layout.install` split this at the rename so a commit can share
  each fsync round trip with other steps (``fsutil.Batch``).
* ``manifest.json`` is written last, and a release directory is removed by
  first renaming it to a ``.tmp-`` name: a directory named ``<sequence>``
  without a valid manifest is debris from some older, interrupted operation.
* The pointer is replaced by creating a symlink under a temporary name and
  renaming it over the old one, then fsyncing ``current/`` (possibly in a
  batch with other fsyncs); a reader sees the old target or the new one,
  never no link.
* Generated files are rendered deterministically, so a damaged one can be
  rebuilt byte-for-byte from its verified blobs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from konorkestra.agent.store.fsutil import REAL_FS, Batch, Fs, ensure_dir, remove_tree
from konorkestra.agent.store.records import ReleaseRecord
from konorkestra.durable import TMP_PREFIX, tmp_name, write_new
from konorkestra.model.canonical import digest_of
from konorkestra.model.types import Digest

RELEASE_JSON = "release.json"
MANIFEST = "manifest.json"


def _text(value: Any) -> str:
    # Compact separators keep the C encoder (indent would not); sorted keys keep it deterministic.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _json(value: Any) -> bytes:
    return _text(value).encode() + b"\n"


def render(record: ReleaseRecord, config: Mapping[str, Any]) -> dict[str, bytes]:
    """The generated files of a release directory (relative path -> bytes).

    ``release.json`` is ``_json`` of the whole release; its ``config`` part is
    spliced in from the per-ConfigSet texts, so each ConfigSet is encoded once.
    """
    texts = {name: _text(data) for name, data in config.items()}
    head = _text(
        {
            "group": record.group,
            "release": record.release_id,
            "sequence": record.sequence,
            "digest": record.digest,
            "committed_at": record.committed_at,  # sorts first: a string, cannot hold the key
            "config": None,
        }
    )
    members = ",".join(f"{_text(name)}:{texts[name]}" for name in sorted(texts))
    release = head.replace('"config":null', '"config":{' + members + "}", 1)
    out = {RELEASE_JSON: release.encode() + b"\n"}
    for name, text in texts.items():
        out[f"config/{name}.json"] = text.encode() + b"\n"
    return out


class Layout:
    """Paths and durable operations on release directories and pointers."""

    def __init__(self, data: Path, fs: Fs = REAL_FS) -> None:
        self.data = data
        self.fs = fs
        self.releases = data / "releases"
        self.current = data / "current"

    def group_dir(self, group: str) -> Path:
        """``<data>/releases/<group>``."""
        return self.releases / group

    def release_dir(self, group: str, sequence: int) -> Path:
        """``<data>/releases/<group>/<sequence>``."""
        return self.releases / group / str(sequence)

    def build(
        self,
        record: ReleaseRecord,
        rendered: Mapping[str, bytes],
        files: Mapping[str, bytes],
        batch: Batch,
    ) -> Path:
        """Write the release directory under a ``.tmp-`` name; ``batch`` fsyncs it.

        Returns the temporary path for :meth:`install` (after ``batch.sync()``).
        """
        gdir = self.group_dir(record.group)
        ensure_dir(gdir, self.fs, batch)
        tmp = tmp_name(gdir, str(record.sequence))
        self.fs.mkdir(tmp)
        made: list[Path] = [tmp]
        entries = {**rendered, **{f"files/{p}": b for p, b in files.items()}}
        for rel in sorted(entries):
            parent = (tmp / rel).parent
            stack = []
            while parent not in made and not parent.exists():
                stack.append(parent)
                parent = parent.parent
            for d in reversed(stack):
                self.fs.mkdir(d)
                made.append(d)
        for rel, data in sorted(entries.items()):
            batch.write_new(tmp / rel, data, 0o444)
        batch.write_new(tmp / MANIFEST, _json(record.to_json()), 0o444)  # last
        for d in made:
            batch.sync_dir(d)
        return tmp

    def install(self, record: ReleaseRecord, tmp: Path, batch: Batch) -> Path:
        """Rename a built (and synced) directory into place; ``batch`` fsyncs the parent."""
        final = self.release_dir(record.group, record.sequence)
        if final.exists():  # debris of an earlier, rolled-back attempt
            self.remove_release(record.group, record.sequence)
        self.fs.rename(tmp, final)
        batch.sync_dir(final.parent)
        return final

    def remove_release(self, group: str, sequence: int | str, *, durable: bool = True) -> None:
        """Delete a release directory: rename it to a ``.tmp-`` name, then remove it.

        The rename is atomic, so the directory is either still complete (and
        recovery adopts or removes it) or debris that recovery sweeps. With
        ``durable`` the parent is fsynced after the rename.
        """
        d = self.group_dir(group) / str(sequence)
        if d.exists():
            doomed = tmp_name(d.parent, f"gc-{sequence}")
            self.fs.rename(d, doomed)
            if durable:
                self.fs.fsync_dir(d.parent)
            remove_tree(doomed, self.fs)

    def read_manifest(self, group: str, sequence: int) -> ReleaseRecord | None:
        """The directory's record if present and consistent with its name."""
        try:
            raw = json.loads((self.release_dir(group, sequence) / MANIFEST).read_bytes())
            rec = ReleaseRecord.from_json(raw)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return rec if (rec.group, rec.sequence) == (group, sequence) else None

    def release_dirs(self, group: str) -> list[str]:
        """Names of entries under ``releases/<group>`` (sequences and debris)."""
        gdir = self.group_dir(group)
        return sorted(p.name for p in gdir.iterdir()) if gdir.is_dir() else []

    def damaged(self, record: ReleaseRecord) -> list[str]:
        """Relative paths in the release directory that are missing or wrong."""
        root = self.release_dir(record.group, record.sequence)
        expect: dict[str, Digest] = dict(record.layout)
        expect.update({f"files/{f.path}": f.digest for f in record.files})
        bad = []
        for rel, digest in sorted(expect.items()):
            try:
                ok = digest_of((root / rel).read_bytes()) == digest
            except OSError:
                ok = False
            if not ok:
                bad.append(rel)
        return bad

    def rewrite(self, record: ReleaseRecord, contents: Mapping[str, bytes]) -> None:
        """Atomically replace damaged files of a release directory (repair)."""
        root = self.release_dir(record.group, record.sequence)
        for rel, data in contents.items():
            target = root / rel
            ensure_dir(target.parent, self.fs)
            tmp = tmp_name(target.parent, target.name)
            write_new(tmp, data, 0o444, self.fs)
            self.fs.rename(tmp, target)
            self.fs.fsync_dir(target.parent)

    # -- pointers ---------------------------------------------------------

    def read_pointer(self, group: str) -> int | None:
        """The sequence ``current/<group>`` names, or ``None`` without a link."""
        try:
            target = os.readlink(self.current / group)
        except OSError:
            return None
        head, _, seq = target.rpartition("/")
        if head != f"../releases/{group}" or not seq.isdigit():
            return None
        return int(seq)

    def flip(self, group: str, sequence: int, batch: Batch | None = None) -> None:
        """Point ``current/<group>`` at a release: symlink, rename, fsync dir.

        With ``batch`` the fsync of ``current/`` is added to it instead of run now.
        """
        tmp = tmp_name(self.current, group)
        self.fs.symlink(f"../releases/{group}/{sequence}", tmp)
        self.fs.rename(tmp, self.current / group)
        if batch is None:
            self.fs.fsync_dir(self.current)
        else:
            batch.sync_dir(self.current)

    def pointer_groups(self) -> list[str]:
        """Groups that have a ``current/`` entry."""
        return sorted(p.name for p in self.current.iterdir() if not p.name.startswith("."))

    def debris(self) -> Iterable[Path]:
        """Temporary names left by interrupted operations."""
        yield from self.current.glob(TMP_PREFIX + "*")
        if self.releases.is_dir():
            for gdir in self.releases.iterdir():
                yield from gdir.glob(TMP_PREFIX + "*")
