"""Diagnostics: what is wrong with a config repo, where, and what to do.

Example::

    >>> from konorkestra.repo.diagnostics import Diagnostic
    >>> d = Diagnostic.error("missing-policy", "Group 'checkout' names Policy 'slow', "
    ...     "which does not exist", file="groups.yaml", line=7, column=11,
    ...     kind="Group", name="checkout", path="/spec/policy")
    >>> d.hint
    'define a Policy with that name or fix the spelling'

Invariants:

* Every diagnostic has a ``code`` from :data:`CODES`; codes are stable strings
  that scripts and docs rely on, and every code has a default hint.
* Lines and columns are 1-based; ``path`` is a JSON Pointer into the document.
* Validation collects diagnostics instead of stopping at the first problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


CODES: dict[str, str] = {
    # Loading: files and YAML.
    "yaml-syntax": "fix the YAML syntax at the position shown",
    "yaml-limit": "split the file or simplify it; definition files are small and plain",
    "yaml-unsupported": "use plain JSON-compatible YAML: no custom tags, quote dates, string keys",
    "yaml-duplicate-key": "remove or rename one of the repeated keys",
    "unknown-kind": "kind must be one of ConfigSet, Policy, Group",
    "api-version": "use apiVersion: konorkestra.io/v1",
    # Schema.
    "schema": "see docs/reference/format.md for the fields of each kind",
    # Cross-definition semantics.
    "duplicate-name": "names are unique per kind (ConfigSets: per name@version); rename one",
    "missing-configset": "define that ConfigSet (and version) or fix the reference",
    "missing-policy": "define a Policy with that name or fix the spelling",
    "group-repeats-configset": "a Group can carry only one version of each ConfigSet",
    # ConfigSet content.
    "data-schema": "change spec.data to satisfy spec.schema, or fix the schema",
    "schema-invalid": "spec.schema must be a valid JSON Schema (draft 2020-12)",
    "schema-ref": "$ref must be a repo-relative path to an existing .json/.yaml file",
    "file-path": "use a repo-relative POSIX path inside the repo, e.g. files/nginx/app.conf",
    "file-missing": "add the file to the repo or fix the path",
    # Policy sanity.
    "policy-steps": "list steps with strictly ascending percent, ending at 100",
    "policy-duration": "write durations like 90s, 5m or 1h30m",
    "guard-signal": "use a known signal",
    # History.
    "immutable-version": "bump metadata.version; a published name@version never changes",
    # Destructive commits (against the previous commit; see konorkestra.repo.deletions).
    "group-deleted": "add the trailer 'Konorkestra-Allow-Delete: GROUP' to the commit message",
    "every-group-deleted": "add the trailer 'Konorkestra-Allow-Delete: *' if you mean it",
}


@dataclass(frozen=True)
class Diagnostic:
    """One finding about one place in the repo."""

    code: str
    message: str
    severity: Severity = Severity.ERROR
    file: str | None = None
    line: int | None = None
    column: int | None = None
    kind: str | None = None
    name: str | None = None
    path: str = ""
    hint: str | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown diagnostic code {self.code!r}")
        if self.hint is None:
            object.__setattr__(self, "hint", CODES[self.code])

    @classmethod
    def error(cls, code: str, message: str, **where: Any) -> Diagnostic:
        return cls(code, message, Severity.ERROR, **where)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file or "", self.line or 0, self.column or 0, self.code)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["severity"] = str(self.severity)
        return out


def location(d: Mapping[str, object]) -> str:
    """Where a stored diagnostic (:meth:`Diagnostic.to_dict`) points: ``file:line:col``,
    as ``konorctl commits show`` and the dashboard print it; ``(repo)`` when nowhere."""
    parts = [str(d[k]) for k in ("file", "line", "column") if d.get(k)]
    return ":".join(parts) or "(repo)"


def json_pointer(path: tuple[str | int, ...]) -> str:
    """``("spec", "steps", 1)`` -> ``/spec/steps/1`` (RFC 6901 escaping)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)
