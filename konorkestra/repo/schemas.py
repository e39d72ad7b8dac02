"""The JSON Schemas of the three kinds, and schema errors as diagnostics.

Example::

    from konorkestra.repo.schemas import kind_schema, schema_diagnostics
    kind_schema("Policy")["properties"]["spec"]["required"]   # ['strategy']
    schema_diagnostics(definition)   # [] when the document matches its kind

Invariants:

* ``schema/*.schema.json`` (shipped as ``konorkestra/schema/``) is the single
  description of the format; this module only loads and applies it.
* ``$ref`` between our schemas resolves from the shipped files only: unknown
  references are errors. A user's ``spec.schema`` is checked and applied by
  :mod:`konorkestra.model.dataschema`, not here.
* Each schema error becomes one ``schema`` diagnostic at the offending node
  (an unknown field points at its key, a missing field at its parent).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from konorkestra.repo.diagnostics import Diagnostic
from konorkestra.repo.loader import Definition

if TYPE_CHECKING:  # imported when first used: jsonschema costs ~0.1 s at start-up
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from referencing import Registry, Resource

_BASE = "https://konorkestra.io/schema/v1/"
SCHEMA_FILES = {
    "ConfigSet": "configset.schema.json",
    "Policy": "policy.schema.json",
    "Group": "group.schema.json",
}


def _no_network(uri: str) -> Resource[Any]:
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


def _read(name: str) -> dict[str, Any]:
    text = resources.files("konorkestra").joinpath("schema", name).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _registry() -> Registry[Any]:
    """Our schemas, in a registry that refuses to retrieve anything else."""
    from referencing import Registry, Resource

    offline: Registry[Any] = Registry(retrieve=_no_network)  # type: ignore[call-arg]
    names = ["common.schema.json", *SCHEMA_FILES.values()]
    return offline.with_resources(
        (_BASE + name, Resource.from_contents(_read(name))) for name in names
    )


def kind_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema document for ``kind``."""
    return _read(SCHEMA_FILES[kind])


@cache
def kind_validator(kind: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(kind_schema(kind), registry=_registry())


def _message(error: ValidationError) -> tuple[str, tuple[str | int, ...], bool, str | None]:
    """(message, path, point at key?, hint) for one schema error."""
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    field = "/".join(str(p) for p in path) or "document"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        where = (*path, extra[0]) if extra else path
        return (
            f"unknown field {'/'.join(str(p) for p in where)!r}",
            where,
            True,
            f"allowed fields here: {', '.join(allowed)}",
        )
    if error.validator == "required":
        return f"{field}: {error.message}", path, False, None
    description = schema.get("description")
    return f"{field}: {error.message}", path, False, description


def schema_diagnostics(defn: Definition) -> list[Diagnostic]:
    """Every schema violation of one definition, in document order."""
    out: list[Diagnostic] = []
    errors = sorted(kind_validator(defn.kind).iter_errors(defn.value), key=lambda e: e.path)
    for error in errors:
        message, path, key, hint = _message(error)
        out.append(Diagnostic.error("schema", message, hint=hint, **defn.where(path, key=key)))
    return out
