"""Turn one ConfigSet definition into a model ConfigSet: schema, data, files.

Example::

    from konorkestra.repo.configsets import build_configset
    built = build_configset(definition, snapshot.source)
    built.configset.digest() if built.configset else built.diagnostics

Invariants:

* ``spec.schema`` is inline, or exactly ``{"$ref": "<repo-relative path>"}``
  naming a ``.json``/``.yaml``/``.yml`` file; the resolved schema is inlined
  into the canonical form, so the digest covers it.
* ``spec.data`` must satisfy that schema as judged by
  :mod:`konorkestra.model.dataschema` -- the agent uses the same module, so
  both judge alike (draft, formats, patterns, offline references).
* Each ``spec.files`` path is checked by
  :func:`~konorkestra.repo.sources.check_repo_path` and must name a regular
  file; its bytes are returned so callers never read a file twice.
* Integers beyond 2**53 are refused here, where the line is known, rather than
  failing later in canonical serialization.
* A ConfigSet model object is returned only when there is no error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from konorkestra.model.canonical import CanonicalError
from konorkestra.model.dataschema import SchemaProblemError, SchemaRefError, compile_schema
from konorkestra.model.definitions import ConfigSet, FileEntry
from konorkestra.model.types import ConfigSetName
from konorkestra.repo.diagnostics import Diagnostic
from konorkestra.repo.loader import Definition
from konorkestra.repo.sources import FileSource, SourceError, check_repo_path
from konorkestra.repo.yamlsafe import JsonPath, YamlError, load_yaml

MAX_DATA_ERRORS = 20
_MAX_SAFE_INT = 2**53 - 1


@dataclass
class BuiltConfigSet:
    configset: ConfigSet | None
    files: dict[str, bytes] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def schema_ref(spec: dict[str, Any]) -> str | None:
    """The repo path of ``spec.schema`` when it is a repo ``$ref``."""
    schema = spec.get("schema")
    if isinstance(schema, dict) and set(schema) == {"$ref"}:
        ref = schema["$ref"]
        if isinstance(ref, str) and not ref.startswith("#") and "://" not in ref:
            return ref
    return None


def dependencies(defn: Definition) -> list[str]:
    """Repo paths whose content a ConfigSet's digest depends on."""
    spec = defn.spec
    files = spec.get("files")
    deps = [f for f in files if isinstance(f, str)] if isinstance(files, list) else []
    ref = schema_ref(spec)
    return [ref, *deps] if ref else deps


def _big_ints(value: Any, path: JsonPath) -> list[JsonPath]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [path] if abs(value) > _MAX_SAFE_INT else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _big_ints(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _big_ints(v, (*path, i))]
    return []


def _load_schema(defn: Definition, source: FileSource, out: list[Diagnostic]) -> Any:
    spec = defn.spec
    ref = schema_ref(spec)
    if ref is None:
        return spec.get("schema")
    where = defn.where(("spec", "schema", "$ref"))
    if not ref.endswith((".json", ".yaml", ".yml")):
        out.append(
            Diagnostic.error("schema-ref", f"$ref {ref!r} is not a .json/.yaml file", **where)
        )
        return None
    try:
        raw = source.read(ref)
    except SourceError as exc:
        out.append(Diagnostic.error("schema-ref", f"$ref: {exc.message}", **where))
        return None
    try:
        if ref.endswith(".json"):
            return json.loads(raw.decode("utf-8"))
        docs = load_yaml(raw)
        return docs[0].value if len(docs) == 1 else None
    except (ValueError, YamlError) as exc:
        out.append(Diagnostic.error("schema-ref", f"$ref {ref!r} does not parse: {exc}", **where))
        return None


def _check_data(defn: Definition, schema: Any, diags: list[Diagnostic]) -> None:
    """``spec.data`` against ``schema``: schema problems, then up to 20 data errors."""
    spec = defn.spec
    inline = schema_ref(spec) is None
    if not isinstance(schema, dict):
        where = defn.where(("spec", "schema") if inline else ("spec", "schema", "$ref"))
        diags.append(Diagnostic.error("schema-invalid", "the schema must be a mapping", **where))
        return
    try:
        compiled = compile_schema(schema)
    except SchemaRefError as exc:
        hint = "use $ref only to #/$defs/... inside the schema; only the one $ref file is loaded"
        message = f"spec.schema: reference cannot be resolved: {exc.message}"
        where = defn.where(("spec", "schema"))
        diags.append(Diagnostic.error("schema-ref", message, hint=hint, **where))
        return
    except SchemaProblemError as exc:
        inside = "/".join(str(p) for p in exc.path) or "schema"
        where = defn.where(("spec", "schema", *(exc.path if inline else ("$ref",))))
        message = f"spec.schema/{inside}: {exc.message}"
        diags.append(Diagnostic.error("schema-invalid", message, **where))
        return
    except CanonicalError as exc:
        where = defn.where(("spec", "schema"))
        diags.append(Diagnostic.error("yaml-unsupported", f"not canonical JSON: {exc}", **where))
        return
    for error in compiled.errors(spec["data"], limit=MAX_DATA_ERRORS):
        field_name = "/".join(str(p) for p in error.path) or "data"
        diags.append(
            Diagnostic.error(
                "data-schema",
                f"spec.data/{field_name}: {error.message}",
                **defn.where(("spec", "data", *error.path)),
            )
        )


def build_configset(defn: Definition, source: FileSource) -> BuiltConfigSet:
    """Check a schema-valid ConfigSet definition and build its model object."""
    spec, meta = defn.spec, defn.value["metadata"]
    built = BuiltConfigSet(None)
    diags = built.diagnostics
    for path in _big_ints(spec.get("data"), ("spec", "data")):
        diags.append(
            Diagnostic.error(
                "yaml-unsupported",
                "integer beyond 2**53 cannot be represented canonically",
                hint="quote it as a string",
                **defn.where(path),
            )
        )
    schema = _load_schema(defn, source, diags)
    if "schema" in spec and not diags:
        _check_data(defn, schema, diags)
    entries: dict[str, FileEntry] = {}
    for index, path in enumerate(spec.get("files", [])):
        try:
            content = source.read(path)
        except SourceError as exc:
            diags.append(
                Diagnostic.error(exc.code, exc.message, **defn.where(("spec", "files", index)))
            )
            continue
        if check_repo_path(path) is None:
            built.files[path] = content
            entries[path] = FileEntry.of(content)
    if diags:
        return built
    configset = ConfigSet(
        name=ConfigSetName(defn.name),
        version=int(meta["version"]),
        data=spec["data"],
        schema=schema if "schema" in spec else None,
        files=entries,
    )
    try:
        configset.blob()
    except CanonicalError as exc:
        diags.append(
            Diagnostic.error("yaml-unsupported", f"not canonical JSON: {exc}", **defn.where())
        )
        return built
    built.configset = configset
    return built
