"""``konorctl diff`` between two Releases: what the Center signed, ConfigSet by ConfigSet.

Example::

    konorctl diff checkout-1-0a1b2c3d4e5f6a7b checkout-2-8c9d0e1f2a3b4c5d
    konorctl diff checkout-1-0a1b2c3d4e5f6a7b checkout-2-8c9d0e1f2a3b4c5d -o json \\
        --center https://center:7400 --token "$TOKEN"

    from konorkestra.cli.diff_releases import fetch_release_diff
    diff = fetch_release_diff(Settings.resolve(center=None, token=None), a, b)
    diff.changed, [cs.op for cs in diff.configsets], diff.policy

Invariants (``tests/cli/test_diff_releases.py`` tests them by name):

* **RD1** Both sides are Release ids (:func:`konorkestra.model.releaseid.parse_release_id`),
  read from the Center with ``GET /v1/releases/{id}`` and parsed by the model's
  one reader of that JSON (:meth:`~konorkestra.model.release.Release.from_json`);
  an answer naming another Release than the one asked for is refused.
* **RD2** A ConfigSet's content is its blob from ``GET /v1/blobs/{digest}``,
  fetched once per digest, parsed by the agent's parser of the blob contract
  (:meth:`konorkestra.agent.store.records.ConfigSetDoc.parse`: digest and
  ``name@version`` checked), and rebuilt as a model
  :class:`~konorkestra.model.definitions.ConfigSet` whose digest must equal the
  Release's. A Center serving other bytes is an error, never a quiet diff.
* **RD3** ConfigSets are compared by :func:`konorkestra.repo.semdiff.diff_configsets`
  (rules SD2-SD9 there): each name on either side once, in name order, with
  its version before → after, data, schema and raw files by digest and size.
  RD3-RD5 are :func:`konorkestra.repo.releasediff.diff_releases`, which the
  dashboard's Release page calls too.
* **RD4** The Policy is compared by name, digest and strategy: all the Center
  API serves of a Release's Policy (a :class:`~konorkestra.model.release.PolicyRef`).
  Text and JSON say so (``compared``); its steps, guards and approval are the
  config repo's at each Release's commit (``konorctl diff <commit> <commit>``).
* **RD5** The diff is content only: it differs when a ConfigSet is added,
  removed or changed (another version or digest) or a Policy field differs.
  Ids, sequences, commits and times never make a difference. Two Releases of
  different Groups may be compared: the diff says so, the Group name is not
  a difference.
* **RD6** Any trouble with the Center (unreachable, token refused, unknown
  Release, a malformed answer) is a :class:`ReleaseDiffError` with one line
  naming the Center or the Release; ``konorctl diff`` exits 2 with it.

:func:`~konorkestra.repo.releasediff.diff_releases` is pure (two Releases and their
ConfigSets in, a frozen diff out, in ``repo/``); :class:`ReleaseReader` is the shell
that talks to the Center, and this module draws the result.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from konorkestra.cli.client import CenterClient, CenterError, Settings
from konorkestra.cli.diff_view import line, render_configset
from konorkestra.model.definitions import ConfigSet, FileEntry
from konorkestra.model.release import ConfigSetRef, Release
from konorkestra.model.releaseid import parse_release_id
from konorkestra.model.types import Digest, JsonObject
from konorkestra.repo.releasediff import POLICY_NOTE, ReleaseDiff, diff_releases


class ReleaseDiffError(Exception):
    """One line of trouble reading a Release from the Center (RD6)."""


def is_release_id(text: str) -> bool:
    """True when ``text`` is a Release id, ``<group>-<sequence>-<16 hex>``."""
    return parse_release_id(text) is not None


def side_json(release: Release) -> JsonObject:
    """One side as ``konorctl diff -o json`` names it: ``ref`` and ``commit`` as for revisions."""
    return {
        "ref": release.id,
        "commit": release.commit,
        "group": release.group,
        "sequence": release.sequence,
        "digest": release.digest,
    }


def parse_configset_blob(ref: ConfigSetRef, blob: bytes) -> ConfigSet:
    """RD2: ``blob`` as the model ConfigSet ``ref`` names, or :class:`ReleaseDiffError`."""
    from konorkestra.agent.store.errors import StoreError
    from konorkestra.agent.store.records import ConfigSetDoc

    try:
        doc = ConfigSetDoc.parse(ref, blob)
    except StoreError as exc:
        raise ReleaseDiffError(f"the Center's blob of {ref.ref} is not usable: {exc}") from None
    files = {f.path: FileEntry(f.digest, f.size) for f in doc.files}
    built = ConfigSet(ref.name, ref.version, doc.data, doc.schema, files)
    if built.digest() != ref.digest:
        raise ReleaseDiffError(f"the Center's blob of {ref.ref} is not in canonical form")
    return built


class ReleaseReader:
    """Reads Releases and their ConfigSets from one Center; each blob once (RD1, RD2)."""

    def __init__(self, client: CenterClient) -> None:
        self.client = client
        self.contents: dict[Digest, ConfigSet] = {}

    def release(self, rid: str) -> Release:
        try:
            answer = self.client.get(f"/v1/releases/{rid}")
        except CenterError as exc:
            if exc.status == 404:
                url = self.client.settings.center
                raise ReleaseDiffError(f"{rid}: no such Release at the Center {url}") from None
            raise ReleaseDiffError(str(exc.message)) from None
        try:
            release = Release.from_json(answer)
        except ValueError as exc:
            raise ReleaseDiffError(f"{rid}: the Center's answer is not a Release: {exc}") from None
        if release.id != rid:
            raise ReleaseDiffError(f"{rid}: the Center answered with Release {release.id}")
        return release

    def fetch_configsets(self, release: Release) -> None:
        for ref in release.configsets:
            if ref.digest in self.contents:
                continue
            try:
                blob = self.client.request("GET", f"/v1/blobs/{ref.digest}").content
            except CenterError as exc:
                raise ReleaseDiffError(f"{ref.ref} of {release.id}: {exc.message}") from None
            self.contents[ref.digest] = parse_configset_blob(ref, blob)


def fetch_release_diff(settings: Settings, a: str, b: str) -> ReleaseDiff:
    """Read Releases ``a`` and ``b`` and their ConfigSets from the Center, then diff them."""
    with CenterClient(settings) as client:
        reader = ReleaseReader(client)
        old, new = reader.release(a), reader.release(b)
        reader.fetch_configsets(old)
        reader.fetch_configsets(new)
    return diff_releases(old, new, reader.contents)


def _short(field: str, value: str) -> str:
    if field == "digest":
        algorithm, _, hexdigest = value.partition(":")
        return f"{algorithm}:{hexdigest[:12]}"
    return value or "(none)"


def summary(diff: ReleaseDiff) -> str:
    """``1 ConfigSet changed, 0 added, 0 removed, 1 unchanged; Policy unchanged``."""
    c = diff.counts()
    noun = "ConfigSet" if c["changed"] == 1 else "ConfigSets"
    policy = "Policy changed" if diff.policy else "Policy unchanged"
    if not diff.changed:
        return f"no difference: {c['unchanged']} ConfigSets unchanged, {policy}"
    counts = f"{c['added']} added, {c['removed']} removed, {c['unchanged']} unchanged"
    return f"{c['changed']} {noun} changed, {counts}; {policy}"


def render_release_diff(console: Console, diff: ReleaseDiff) -> None:
    """Header, the Releases' ConfigSets (RD3), their Policy (RD4), a summary line."""
    old, new = diff.old, diff.new

    def label(r: Release) -> str:
        return f"{r.id} (commit {r.commit[:12]})" if r.commit else f"{r.id} (made by hand)"

    console.print(Text(f"diff {label(old)} → {label(new)}", style="bold"))
    console.print()
    sign = "~" if diff.changed else "="
    if diff.same_group:
        title = f"{sign} Release {old.group} {old.sequence} → {new.sequence}"
    else:
        title = f"{sign} Release {old.group} {old.sequence} → {new.group} {new.sequence}"
    line(console, 0, title, bold=True)
    for cs in diff.configsets:
        render_configset(console, cs, indent=2)
    if not diff.policy:
        line(console, 2, f"= Policy {new.policy.name} (unchanged)")
    else:
        line(console, 2, f"~ Policy {new.policy.name}", bold=True)
        for f in diff.policy:
            line(console, 6, f"~ {f.field}: {_short(f.field, f.old)} → {_short(f.field, f.new)}")
    console.print(Text(f"  ({POLICY_NOTE})"))
    if not diff.same_group:
        console.print(Text(f"(two Groups compared: {old.group} and {new.group})"))
    console.print()
    console.print(Text(summary(diff)))
