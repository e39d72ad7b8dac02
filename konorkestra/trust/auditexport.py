"""The audit export's layout, written: the one writer ``konorctl audit export`` and the
dashboard's download (``GET /ui/audit/export``) both use, so both write the same bytes.

Example::

    >>> import io
    >>> from konorkestra.trust.auditexport import ExportWriter
    >>> out = io.StringIO()
    >>> w = ExportWriter(out, "jsonl", since=None, until=None)
    >>> w.finish({"mediaType": "…"})
    >>> out.getvalue().splitlines()[0]
    '{"export":{"first_prev_hash":null,"first_seq":null,"since":null,"until":null}}'

JSONL: line 1 ``{"export": {"since", "until", "first_seq", "first_prev_hash"}}``
(the range asked for and where the chain enters it), one line per event
(``seq, at, actor, action, details, prev_hash, hash``: :data:`EVENT_FIELDS`),
and a last line ``{"checkpoint": <Sigstore bundle of the checkpoint>}``. CSV: a
header row and one row per event (``details`` as JSON); the export header and
the checkpoint go to a sidecar the caller writes (:meth:`ExportWriter.range`).

Invariants:

* Each line is compact JSON with sorted keys (:func:`export_line`); an event
  line holds exactly :data:`EVENT_FIELDS`, as the offline judge
  (:mod:`konorkestra.trust.auditchain`, rule A1) requires.
* The header names the first event written, so it is written lazily: before
  the first event, or by :meth:`ExportWriter.finish` for an empty export.
* Nothing here reads the store or the network: events and the checkpoint come in.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from typing import IO, Any

from konorkestra.trust.auditchain import EVENT_FIELDS, ExportRange

__all__ = ["EVENT_FIELDS", "ExportWriter", "export_line"]


def export_line(value: object) -> str:
    """One JSONL line: compact JSON, keys sorted, non-ASCII kept."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


class ExportWriter:
    """Writes the header lazily (it names the first event), the events, the checkpoint."""

    def __init__(self, stream: IO[str], fmt: str, since: str | None, until: str | None) -> None:
        self.stream, self.fmt, self.since, self.until = stream, fmt, since, until
        self.first: tuple[int, str] | None = None
        self.last_seq: int | None = None
        self.count = 0
        self.csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        if self.csv is not None:
            self.csv.writerow(EVENT_FIELDS)

    def range(self) -> ExportRange:
        first, prev = self.first or (None, None)
        return ExportRange(self.since, self.until, first, prev)

    def event(self, event: Mapping[str, Any]) -> None:
        row = {k: event[k] for k in EVENT_FIELDS}
        if self.first is None:
            self.first = (int(row["seq"]), str(row["prev_hash"]))
            self._header()
        if self.csv is not None:
            details = json.dumps(row["details"], ensure_ascii=False, sort_keys=True,
                                 separators=(",", ":"))  # fmt: skip
            self.csv.writerow([details if k == "details" else row[k] for k in EVENT_FIELDS])
        else:
            self.stream.write(export_line(row))
        self.last_seq = int(row["seq"])
        self.count += 1

    def _header(self) -> None:
        if self.csv is None:
            self.stream.write(export_line({"export": self.range().to_json()}))

    def finish(self, checkpoint: Mapping[str, Any]) -> None:
        if self.first is None:
            self._header()
        if self.csv is None:
            self.stream.write(export_line({"checkpoint": checkpoint}))
