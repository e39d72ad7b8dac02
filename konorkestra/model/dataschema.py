"""ConfigSet data against its own ``spec.schema``: the one judge for Center and agent.

Example::

    >>> from konorkestra.model.dataschema import compile_schema
    >>> schema = compile_schema({"properties": {"port": {"type": "integer", "minimum": 1024}}})
    >>> schema.is_valid({"port": 8080})
    True
    >>> [(e.pointer, e.message) for e in schema.errors({"port": 80})]
    [('/port', '80 is less than the minimum of 1024')]

The Center (``konorkestra.repo.configsets``, ``konorctl validate``) and the
agent's store (``konorkestra.agent.store.validate``) both call this module and
nothing else, so a release the Center signs is a release the agent accepts.

Invariants:

* **Draft.** A ``$schema`` naming draft 4, 6, 7, 2019-09 or 2020-12 (``http``
  or ``https``, with or without a trailing ``#``) picks that draft; anything
  else, or no ``$schema``, means draft 2020-12.
* **Schema check.** The schema must match its draft's meta-schema (Python
  ``jsonschema``, for its best-match message and path) and must compile in
  ``jsonschema-rs`` (which also compiles every ``pattern``); otherwise
  :class:`SchemaInvalidError`. A schema that ``jsonschema-rs``'s own
  meta-schema check passes (under the draft chosen above) skips the Python
  check, so a process that never meets a bad schema never imports Python
  ``jsonschema`` (about 3 MiB of an idle agent); any other schema gets the
  Python check exactly as before.
* **Imports.** ``jsonschema-rs`` is imported on the first compile, not with
  this module: an agent whose Releases carry no schema never loads it.
* **References.** ``$ref`` resolves inside the schema only (``#/$defs/...``,
  anchors, embedded ``$id`` resources). Nothing is ever fetched: the retriever
  refuses every URI, and an unresolvable reference is a :class:`SchemaRefError`.
* **Formats are assertions**, checked by ``jsonschema-rs``'s built-in format
  validators (``date``, ``date-time``, ``time``, ``duration``, ``email``,
  ``hostname``, ``ipv4``, ``ipv6``, ``uri``, ``uuid``, ``regex``, ...);
  unknown formats are ignored.
* **Patterns** are ECMA-262-style regular expressions (``jsonschema-rs``'s
  engine), unanchored (a match anywhere passes).
* **Errors** come in document order of the data (then in the engine's order
  for one node), each an instance path and a message.
* Compiled schemas are cached by their canonical bytes, so equal schemas in
  other key orders share one compiled validator.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from konorkestra.model.canonical import canonical_bytes

if TYPE_CHECKING:
    import jsonschema_rs

Path = tuple[str | int, ...]
"""Keys and indices from the data root to a value."""

DEFAULT_DRAFT = "2020-12"
_DRAFTS: dict[str, tuple[str, str]] = {
    # draft -> (name, class name in jsonschema-rs and in python-jsonschema; python-jsonschema
    # gives the best-match message for a bad schema). Both imported only when needed.
    "json-schema.org/draft/2020-12/schema": ("2020-12", "Draft202012Validator"),
    "json-schema.org/draft/2019-09/schema": ("2019-09", "Draft201909Validator"),
    "json-schema.org/draft-07/schema": ("7", "Draft7Validator"),
    "json-schema.org/draft-06/schema": ("6", "Draft6Validator"),
    "json-schema.org/draft-04/schema": ("4", "Draft4Validator"),
}
_DRAFT_URIS = {name: f"http://{key}#" for key, (name, _) in _DRAFTS.items() if name != "4"}
"""Drafts whose jsonschema-rs meta-schema check agrees with Python's (draft 4's accepts
an empty or repeating ``enum`` that Python refuses, so draft 4 always gets Python's)."""


class SchemaProblemError(ValueError):
    """The schema itself cannot be used; ``path`` points inside the schema."""

    def __init__(self, message: str, path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class SchemaInvalidError(SchemaProblemError):
    """Not a valid schema of its draft (meta-schema, or a pattern that does not compile)."""


class SchemaRefError(SchemaProblemError):
    """A ``$ref`` that does not resolve inside the schema (remote ones never do)."""


@dataclass(frozen=True)
class DataError:
    """One violation: where in the data, and what."""

    path: Path
    message: str

    @property
    def pointer(self) -> str:
        """The path as a JSON Pointer (RFC 6901), ``""`` for the root."""
        return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in self.path)


def draft_of(schema: Mapping[str, Any]) -> str:
    """Which draft judges ``schema``: "2020-12", "2019-09", "7", "6" or "4"."""
    return _draft(schema)[0]


def _draft(schema: Mapping[str, Any]) -> tuple[str, str]:
    uri = schema.get("$schema")
    if isinstance(uri, str):
        key = uri.removeprefix("https://").removeprefix("http://").removesuffix("#")
        if key in _DRAFTS:
            return _DRAFTS[key]
    return _DRAFTS["json-schema.org/draft/2020-12/schema"]


def _refuse(uri: str) -> NoReturn:
    raise LookupError(f"{uri} is not part of the schema (nothing is fetched)")


def _rust_meta_valid(schema: dict[str, Any], draft: str) -> bool:
    """Does jsonschema-rs's meta-schema of ``draft`` accept ``schema``? (False when unsure.)

    ``$schema`` is set to the draft's own URI first, so nothing is ever fetched.
    """
    import jsonschema_rs

    if draft not in _DRAFT_URIS:
        return False
    try:
        return bool(jsonschema_rs.meta.is_valid({**schema, "$schema": _DRAFT_URIS[draft]}))
    except Exception:  # a schema it cannot judge gets the Python check
        return False


@functools.cache
def _meta_validator(class_name: str) -> Any:
    import jsonschema  # ~0.1 s to import: only when a schema is compiled

    cls = getattr(jsonschema, class_name)
    return cls(cls.META_SCHEMA)


class DataSchema:
    """A compiled ``spec.schema``; build it with :func:`compile_schema`."""

    def __init__(self, draft: str, validator: jsonschema_rs.Validator) -> None:
        self.draft = draft
        self._validator = validator

    def is_valid(self, data: Any) -> bool:
        return self._validator.is_valid(data)

    def errors(self, data: Any, limit: int | None = None) -> list[DataError]:
        """The first ``limit`` violations (all without one), in document order."""
        if self._validator.is_valid(data):
            return []
        ranks = _Ranks(data)
        found = [
            (ranks.of(e.instance_path), n, DataError(tuple(e.instance_path), e.message))
            for n, e in enumerate(self._validator.iter_errors(data))
        ]
        found.sort(key=lambda item: (item[0], item[1]))
        return [error for _, _, error in found[:limit]]


class _Ranks:
    """Document-order sort keys for instance paths (positions of keys in their maps)."""

    def __init__(self, data: Any) -> None:
        self._data = data
        self._positions: dict[int, dict[str, int]] = {}

    def of(self, path: list[str | int]) -> tuple[int, ...]:
        node, out = self._data, []
        for step in path:
            if isinstance(node, dict):
                positions = self._positions.get(id(node))
                if positions is None:
                    positions = {k: i for i, k in enumerate(node)}
                    self._positions[id(node)] = positions
                out.append(positions.get(str(step), len(positions)))
                node = node.get(str(step))
            elif isinstance(node, list) and isinstance(step, int):
                out.append(step)
                node = node[step] if 0 <= step < len(node) else None
            else:
                out.append(0)
                node = None
        return tuple(out)


def compile_schema(schema: Mapping[str, Any]) -> DataSchema:
    """A checked, compiled schema (cached); raises :class:`SchemaProblemError`."""
    return compile_canonical(canonical_bytes(schema))


@functools.lru_cache(maxsize=128)
def compile_canonical(schema_json: bytes) -> DataSchema:
    """:func:`compile_schema` for a schema already in canonical JSON bytes."""
    schema = json.loads(schema_json)
    if not isinstance(schema, dict):
        raise SchemaInvalidError("the schema must be a mapping")
    draft, cls_name = _draft(schema)
    import jsonschema_rs

    if not _rust_meta_valid(schema, draft):
        from jsonschema.exceptions import best_match

        best = best_match(_meta_validator(cls_name).iter_errors(schema))
        if best is not None:
            raise SchemaInvalidError(best.message, tuple(best.absolute_path))
    rs_cls: type[jsonschema_rs.Validator] = getattr(jsonschema_rs, cls_name)
    try:
        validator = rs_cls(schema, validate_formats=True, retriever=_refuse)
    except jsonschema_rs.ValidationError as exc:
        message = exc.message.split("\n", 1)[0]
        if isinstance(exc.kind, jsonschema_rs.ValidationErrorKind.Referencing):
            if " and retrieving it failed" in message:
                message = message.split(" and retrieving it failed", 1)[0]
                message += " (only references inside the schema resolve; nothing is fetched)"
            raise SchemaRefError(message) from None
        raise SchemaInvalidError(message, tuple(exc.instance_path)) from None
    return DataSchema(draft, validator)
