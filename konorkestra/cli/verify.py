"""``konorctl verify``: check a release bundle offline against a trust root.

Usage::

    konorctl verify release.json --trust-root root.1.json [--trust-root root.2.json ...]
        [--blobs DIR] [--group-scope checkout ...] [--high-water-marks marks.json]
        [--at 2025-06-01T12:00:00Z] [-o text|json]

Invariants:

* Verification is exactly the Agent's (:class:`konorkestra.trust.Verifier`):
  keys come only from the trust root; the first ``--trust-root`` is trusted as
  given (bootstrap) and each further one must rotate from the previous (TUF).
* High-water marks are empty unless ``--high-water-marks`` names a JSON file
  ``{"<group>": {"sequence": 3, "digest": "sha256:…"}}``; the scope is every
  group unless ``--group-scope`` is given.
* ``--blobs DIR`` holds blobs named by digest hex or ``sha256:<hex>``. Without
  it, or for a blob absent from it, the subject is reported as *not checked*;
  a blob present but wrong refuses the bundle.
* Exit 0: verified (prints who signed what, group, sequence, ConfigSets and
  the Git source). Exit 1: refused, one line ``refused: <reason> (<code>)``.
  Exit 2: usage errors (unreadable file, bad option value), one line, no traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from konorkestra.trust import HighWaterMark, TrustError, TrustRoot, VerifiedRelease, Verifier
from konorkestra.trust.verify import Limits
from konorkestra.trust.wire import format_time, parse_time


def _usage(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _read(path: Path, what: str, cap: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(cap + 1)
    except OSError as exc:
        _usage(f"cannot read {what} {path}: {exc.strerror or exc}")
    return data


def _marks(path: Path | None) -> dict[str, HighWaterMark]:
    if path is None:
        return {}
    try:
        doc = json.loads(_read(path, "high-water marks", 1 << 20))
        return {
            str(group): HighWaterMark(int(m["sequence"]), str(m["digest"]))
            for group, m in doc.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        _usage(f"{path}: high-water marks must be {{group: {{sequence, digest}}}} JSON")


def _blob(directory: Path, digest: str, cap: int) -> bytes | None:
    for name in (digest[7:], digest):
        candidate = directory / name
        if candidate.is_file():
            return _read(candidate, "blob", cap)
    return None


def _report(release: VerifiedRelease, root: TrustRoot, blobs: dict[str, str]) -> dict[str, Any]:
    st = release.statement
    return {
        "ok": True,
        "release": release.release_id,
        "statementDigest": release.statement_digest,
        "group": st.group,
        "sequence": st.sequence,
        "previousRelease": st.previous,
        "signers": [{"keyid": kid, "role": "release"} for kid in release.signers],
        "trustRootVersion": root.version,
        "redelivery": release.redelivery,
        "configSets": [
            {
                "name": c.name,
                "version": c.version,
                "digest": c.digest,
                "size": c.size,
                "blob": blobs[c.digest],
            }
            for c in st.configsets
        ],
        "policy": {"name": st.policy.name, "digest": st.policy.digest},
        "source": {
            "repo": st.source.repo,
            "commit": st.source.commit,
            "author": st.source.author,
            "committedAt": format_time(st.source.committed_at),
        },
        "createdAt": format_time(st.created_at),
        "expiresAt": format_time(st.expires_at),
    }


def _text(r: dict[str, Any]) -> str:
    src = r["source"]
    lines = [
        f"verified release {r['release']}",
        f"  group       {r['group']}",
        f"  sequence    {r['sequence']} (previous: {r['previousRelease'] or 'none'})",
        *(f"  signed by   {s['keyid']} ({s['role']})" for s in r["signers"]),
        f"  trust root  v{r['trustRootVersion']}",
        *(
            f"  configset   {c['name']}@{c['version']} {c['digest']} {c['size']} B, {c['blob']}"
            for c in r["configSets"]
        ),
        f"  policy      {r['policy']['name']} {r['policy']['digest']}",
        f"  source      {src['repo']} @ {src['commit']}",
        f"  author      {src['author']}, committed {src['committedAt']}",
        f"  valid       {r['createdAt']} .. {r['expiresAt']}",
    ]
    return "\n".join(lines)


@click.command("verify")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--trust-root", "trust_roots", multiple=True, required=True, type=click.Path(path_type=Path),
    help="Trusted root file; repeat to apply newer root versions in order.",
)  # fmt: skip
@click.option("--blobs", type=click.Path(path_type=Path), help="Directory of blobs by digest.")
@click.option("--group-scope", multiple=True, help="Groups this node serves (default: any).")
@click.option("--high-water-marks", type=click.Path(path_type=Path), help="JSON marks file.")
@click.option("--at", "at", help="Verify as of this UTC time (default: now).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def verify(
    bundle: Path,
    trust_roots: tuple[Path, ...],
    blobs: Path | None,
    group_scope: tuple[str, ...],
    high_water_marks: Path | None,
    at: str | None,
    output: str,
) -> None:
    """Verify a release BUNDLE offline and show who signed what.

    \b
    Examples:
      konorctl verify release.json --trust-root root.1.json --blobs blobs/
      konorctl verify release.json --trust-root root.1.json \\
          --trust-root root.2.json --group-scope checkout -o json
    """
    limits = Limits()
    try:
        now = dt.datetime.now(dt.UTC) if at is None else parse_time(at, "--at")
    except TrustError:
        _usage(f"--at {at!r} is not a UTC time like 2025-06-01T12:00:00Z")
    data = _read(bundle, "bundle", limits.max_bundle_bytes)
    roots = [_read(p, "trust root", 1 << 20) for p in trust_roots]
    marks = _marks(high_water_marks)
    if blobs is not None and not blobs.is_dir():
        _usage(f"--blobs {blobs} is not a directory")
    try:
        root = TrustRoot.from_bytes(roots[0])
        if len(roots) > 1:
            root = root.update_chain(roots[1:], now)
        verifier = Verifier(root, marks, now, scope=group_scope or None, limits=limits)
        release = verifier.verify_release(data)
        status: dict[str, str] = {}
        for cs in release.statement.configsets:
            blob = None if blobs is None else _blob(blobs, cs.digest, limits.max_blob_bytes)
            if blob is None:
                status[cs.digest] = "blob not checked" + (
                    " (no --blobs)" if blobs is None else " (not in --blobs)"
                )
            else:
                release.check_blob(cs.digest, blob)
                status[cs.digest] = "blob ok"
    except TrustError as err:
        if output == "json":
            click.echo(json.dumps({"ok": False, "code": err.code, "reason": err.reason}))
        else:
            click.echo(err.diagnostics(), err=True)
        sys.exit(1)
    report = _report(release, root, status)
    click.echo(json.dumps(report, indent=2) if output == "json" else _text(report))
