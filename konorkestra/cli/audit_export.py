"""``konorctl audit export``: every event of a range, then a checkpoint signed by the Center.

Example::

    konorctl audit export -o audit.jsonl                    # everything, up to the head
    konorctl audit export --since 2026-01-01T00:00:00Z --until 5000 --format csv -o a.csv
    konorctl audit verify audit.jsonl --trust-root root.json

The layout (JSONL: a header line, one line per event, the checkpoint; CSV: rows
and a sidecar) is written by :class:`konorkestra.trust.auditexport.ExportWriter`,
which the dashboard's download uses too; the CSV sidecar is
``FILE.checkpoint.json`` (``{"export": …, "checkpoint": …}``).

Invariants:

* The head is fixed first (``GET /v1/audit/checkpoint``); events are streamed
  page by page (``GET /v1/audit?after=&limit=``) up to that head, so memory is one
  page, and events appended meanwhile are not half-included.
* The checkpoint vouches for the last event written: the head's checkpoint when
  the export reaches it, else ``GET /v1/audit/checkpoint?seq=<last>``.
* A seq ``--since S`` starts after event S; a time ``--since T`` at the first event
  at or after T; ``--until`` (seq or time) ends at the last event at or before it.
* The file appears under its name only when complete (written to ``FILE.partial``
  and renamed); ``-o -`` streams to stdout (JSONL only).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from konorkestra.cli.client import CenterClient, CenterError
from konorkestra.cli.output import client, connection_options
from konorkestra.model.canonical import canonical_bytes
from konorkestra.trust.auditchain import ExportRange, parse_bound
from konorkestra.trust.auditexport import ExportWriter, export_line
from konorkestra.trust.checkpoint import read_checkpoint
from konorkestra.trust.errors import TrustError


def _bound(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    try:
        parse_bound(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None
    return value


@click.command("export")
@connection_options
@click.option("--since", callback=_bound, help="Start after this seq, or at this RFC 3339 time.")
@click.option("--until", callback=_bound, help="End at this seq, or at this RFC 3339 time.")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
@click.option("-o", "--out", required=True, help="Output FILE, or - for stdout (jsonl only).")
@click.option("--page-size", type=click.IntRange(1, 5000), default=5000, show_default=True)
def export(
    center: str | None,
    token: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
    out: str,
    page_size: int,
) -> None:
    """Export audit events with their chain hashes and a signed checkpoint.

    \b
    Example:
      konorctl audit export -o audit.jsonl
      konorctl audit export --since 2026-12-01T00:00:00Z --until 500 \\
          --format csv -o audit.csv
    """
    if fmt == "csv" and out == "-":
        raise click.UsageError("--format csv needs -o FILE (the checkpoint goes to a sidecar)")
    with client(center, token) as c:
        head = _checkpoint(c, None)
        head_seq = read_checkpoint(canonical_bytes(head)).head_seq
        with _target(out) as stream:
            writer = ExportWriter(stream, fmt, since, until)
            events = _events(c, since, until, head_seq, page_size)
            for event in _progress(events, head_seq, since):
                writer.event(event)
            last = writer.last_seq
            cp = head if last is None or last == head_seq else _checkpoint(c, last)
            writer.finish(cp)
            if fmt == "csv":
                _write_sidecar(Path(out), writer.range(), cp)
    where = "stdout" if out == "-" else out
    click.echo(f"exported {writer.count} audit events to {where}", err=True)


def _checkpoint(c: CenterClient, seq: int | None) -> dict[str, Any]:
    found: dict[str, Any] = c.get("/v1/audit/checkpoint", seq=seq)
    try:
        read_checkpoint(canonical_bytes(found))
    except (TrustError, ValueError) as exc:
        raise CenterError(f"the Center sent a malformed checkpoint: {exc}") from None
    return found


def _events(
    c: CenterClient, since: str | None, until: str | None, head_seq: int, page_size: int
) -> Iterator[dict[str, Any]]:
    """Events of the range, oldest first, one page in memory at a time."""
    lo, hi = parse_bound(since), parse_bound(until)
    after = lo if isinstance(lo, int) else 0
    stop = min(hi, head_seq) if isinstance(hi, int) else head_seq
    started = not isinstance(lo, dt.datetime)
    while after < stop:
        page: list[dict[str, Any]] = c.get(
            "/v1/audit", after=after, limit=min(page_size, stop - after)
        )["events"]
        if not page:
            raise CenterError(f"the Center's audit log ends at event {after}, before {stop}")
        for event in page:
            at = dt.datetime.fromisoformat(event["at"])
            if not started:
                if isinstance(lo, dt.datetime) and at < lo:
                    continue
                started = True
            if isinstance(hi, dt.datetime) and at > hi:
                return
            yield event
        after = int(page[-1]["seq"])


def _progress(
    events: Iterator[dict[str, Any]], head_seq: int, since: str | None
) -> Iterator[dict[str, Any]]:
    """``events`` unchanged; with a rich progress bar on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        yield from events
        return
    from rich.console import Console
    from rich.progress import Progress

    lo = parse_bound(since)
    total = head_seq - (lo if isinstance(lo, int) else 0)
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("exporting audit events", total=max(total, 0))
        for event in events:
            yield event
            bar.advance(task)


@contextlib.contextmanager
def _target(out: str) -> Iterator[IO[str]]:
    if out == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    path = Path(out)
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(partial, path)
    except OSError as exc:
        raise CenterError(f"cannot write {out}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)


def _write_sidecar(path: Path, rng: ExportRange, checkpoint: dict[str, Any]) -> None:
    side = path.with_name(path.name + ".checkpoint.json")
    try:
        side.write_text(export_line({"export": rng.to_json(), "checkpoint": checkpoint}), "utf-8")
    except OSError as exc:
        raise CenterError(f"cannot write {side}: {exc}") from None
