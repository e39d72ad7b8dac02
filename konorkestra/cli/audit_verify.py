"""``konorctl audit verify FILE --trust-root root.json``: judge an audit export offline.

Example::

    $ konorctl audit verify audit.jsonl --trust-root root.json
    audit export verified: 250 events (1-250), checkpoint by the timestamp role at …
    $ konorctl audit verify tampered.jsonl --trust-root root.json
    Error: audit export refused: event 7 (line 8): content does not match its hash (edited)

No network: the file and the trust root are all it reads. The rules are
``konorkestra.trust.auditchain`` (A1-A6) and ``konorkestra.trust.checkpoint``.
Exit 0 with a one-line summary; 1 naming the first bad event (or line); 2 for
usage errors (a missing file, a trust root that is not one).

Invariants: memory is one line; a file that is not an export, or is cut, edited
or reordered anywhere, exits 1 with one line and no traceback.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from konorkestra.model.canonical import CanonicalError, canonical_bytes
from konorkestra.trust.auditchain import (
    EVENT_FIELDS,
    AuditChainError,
    ChainChecker,
    ExportRange,
)
from konorkestra.trust.checkpoint import AuditCheckpoint, verify_checkpoint
from konorkestra.trust.errors import TrustError
from konorkestra.trust.root import TrustRoot

MAX_LINE = 16 * 1024 * 1024
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("verify")
@click.argument("file", type=_FILE)
@click.option(
    "--trust-root",
    "trust_root",
    type=_FILE,
    required=True,
    help="The Center's trust root (GET /v1/trust/root), kept with the export.",
)
@click.option(
    "--checkpoint",
    "sidecar",
    type=_FILE,
    default=None,
    help="CSV only: the sidecar [default FILE.checkpoint.json].",
)
def verify(file: Path, trust_root: Path, sidecar: Path | None) -> None:
    """Verify an audit export offline: every hash, the chain, the range, the checkpoint.

    \b
    Example:
      konorctl audit verify audit.jsonl --trust-root root.json
      konorctl audit verify audit.csv --trust-root root.json
    """
    try:
        root = TrustRoot.from_bytes(trust_root.read_bytes())
    except (OSError, TrustError) as exc:
        raise click.BadParameter(
            f"not a trust root: {_why(exc)}", param_hint="--trust-root"
        ) from None
    try:
        with file.open("rb") as raw:
            head = raw.read(1)
        if head == b"{":
            check, cp = _jsonl(file, root)
        else:
            side = sidecar or file.with_name(file.name + ".checkpoint.json")
            if not side.is_file():
                raise AuditChainError(f"no checkpoint: {side} is missing", seq=None, line=None)
            check, cp = _csv(file, side, root)
    except TrustError as exc:
        raise click.ClickException(f"audit export refused: {exc.reason}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from None
    span = "no events" if check.last_seq is None else (
        f"{check.count} events ({check.range.first_seq}-{check.last_seq})"
    )  # fmt: skip
    click.echo(
        f"audit export verified: {span}, chain intact, checkpoint signed by the timestamp role "
        f"at {cp.issued_at:%Y-%m-%dT%H:%M:%SZ} (head {cp.head_seq}, {cp.center.repo or 'center'})"
    )


def _why(exc: Exception) -> str:
    return exc.reason if isinstance(exc, TrustError) else str(exc)


class _NotJson:
    """A line that did not decode; the caller names the event expected there."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """``(line number, decoded JSON or _NotJson)`` per line, one line in memory."""
    number = 0
    while line := stream.readline(MAX_LINE + 1):
        number += 1
        if len(line) > MAX_LINE:
            yield number, _NotJson(f"longer than {MAX_LINE} bytes")
            return
        try:
            yield number, json.loads(line.decode("utf-8"), object_pairs_hook=_unique)
        except (UnicodeDecodeError, ValueError) as exc:
            yield number, _NotJson(f"not valid JSON ({exc})")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def _checkpoint(value: object, check: ChainChecker, where: str, root: TrustRoot) -> AuditCheckpoint:
    try:
        return verify_checkpoint(canonical_bytes(value), root)
    except (TrustError, CanonicalError) as exc:
        raise AuditChainError(
            f"the checkpoint after it ({where}) is refused: {_why(exc)}",
            seq=check.last_seq,
            line=check.last_line,
        ) from None


def _jsonl(file: Path, root: TrustRoot) -> tuple[ChainChecker, AuditCheckpoint]:
    with file.open("rb") as stream:
        lines = _lines(stream)
        first = next(lines, None)
        if first is None or not isinstance(first[1], dict) or set(first[1]) != {"export"}:
            raise AuditChainError('not an audit export (no {"export": …} header)',
                                  seq=None, line=1)  # fmt: skip
        check = ChainChecker(ExportRange.from_json(first[1]["export"]))
        cp: AuditCheckpoint | None = None
        for number, value in lines:
            if cp is not None:
                raise AuditChainError("content after the checkpoint", seq=None, line=number)
            if isinstance(value, _NotJson):
                raise check.refuse(value.reason, line=number)
            if isinstance(value, dict) and set(value) == {"checkpoint"}:
                cp = _checkpoint(value["checkpoint"], check, f"line {number}", root)
                continue
            check.add(value, line=number)
    check.finish(cp)
    assert cp is not None  # finish refuses a missing checkpoint
    return check, cp


def _csv(file: Path, side: Path, root: TrustRoot) -> tuple[ChainChecker, AuditCheckpoint]:
    try:
        doc = json.loads(side.read_bytes().decode("utf-8"), object_pairs_hook=_unique)
    except (UnicodeDecodeError, ValueError) as exc:
        raise AuditChainError(f"{side.name} is not JSON ({exc})", seq=None, line=None) from None
    if not isinstance(doc, dict) or set(doc) != {"export", "checkpoint"}:
        raise AuditChainError(f"{side.name} must hold export and checkpoint", seq=None, line=None)
    check = ChainChecker(ExportRange.from_json(doc["export"]))
    with file.open(encoding="utf-8", newline="") as stream:
        reader = csv.reader(stream)
        try:
            if next(reader, None) != list(EVENT_FIELDS):
                raise AuditChainError(f"the header row must be {','.join(EVENT_FIELDS)}",
                                      seq=None, line=1)  # fmt: skip
            for row in reader:
                check.add(_csv_event(row, reader.line_num, check), line=reader.line_num)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise AuditChainError(f"not CSV ({exc})", seq=None, line=reader.line_num) from None
    cp = _checkpoint(doc["checkpoint"], check, side.name, root)
    check.finish(cp)
    return check, cp


def _csv_event(row: list[str], line: int, check: ChainChecker) -> object:
    if len(row) != len(EVENT_FIELDS):
        raise check.refuse(f"a row must have {len(EVENT_FIELDS)} fields", line=line)
    event: dict[str, Any] = dict(zip(EVENT_FIELDS, row, strict=True))
    if not event["seq"].isascii() or not event["seq"].isdigit():
        raise check.refuse("'seq' must be an integer >= 1", line=line)
    event["seq"] = int(event["seq"])
    try:
        event["details"] = json.loads(event["details"], object_pairs_hook=_unique)
    except ValueError:
        raise AuditChainError("'details' is not JSON", seq=event["seq"], line=line) from None
    return event
