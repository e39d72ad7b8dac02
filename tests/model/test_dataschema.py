"""The one judge of ConfigSet data: draft rule, formats, patterns, references, order.

The Center (``konorctl validate``) and the agent's store must give the same
verdict for every schema and instance; ``test_center_and_agent_agree`` runs
both real paths on one table.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from konorkestra.agent.store.errors import ValidationRefusedError
from konorkestra.agent.store.records import ConfigSetDoc, ReleaseView
from konorkestra.agent.store.validate import validate_schemas
from konorkestra.model.canonical import canonical_bytes, digest_of
from konorkestra.model.dataschema import (
    SchemaInvalidError,
    SchemaRefError,
    compile_schema,
    draft_of,
)
from konorkestra.model.release import ConfigSetRef
from konorkestra.model.types import ConfigSetName, GroupName, ReleaseId, Sequence
from konorkestra.repo import load_worktree, validate

DEFS = {
    "$defs": {"port": {"type": "integer", "minimum": 1024, "maximum": 65535}},
    "properties": {"port": {"$ref": "#/$defs/port"}},
}

# (name, schema, data, valid?) -- None: the schema itself is refused.
CASES: list[tuple[str, dict[str, Any], Any, bool | None]] = [
    ("type ok", {"properties": {"a": {"type": "integer"}}}, {"a": 1}, True),
    ("type bad", {"properties": {"a": {"type": "integer"}}}, {"a": "1"}, False),
    ("bool is no integer", {"properties": {"a": {"type": "integer"}}}, {"a": True}, False),
    ("1.0 is an integer", {"properties": {"a": {"type": "integer"}}}, {"a": 1.0}, True),
    ("enum bool vs int", {"properties": {"a": {"enum": [1]}}}, {"a": True}, False),
    ("minimum", {"properties": {"p": {"minimum": 1024}}}, {"p": 80}, False),
    ("pattern unanchored", {"properties": {"n": {"pattern": "b"}}}, {"n": "abc"}, True),
    ("pattern anchored", {"properties": {"n": {"pattern": "^[a-z]+$"}}}, {"n": "aB"}, False),
    ("pattern unicode class", {"properties": {"n": {"pattern": "^\\p{L}+$"}}}, {"n": "été"}, True),
    ("pattern invalid", {"properties": {"n": {"pattern": "(a"}}}, {"n": "a"}, None),
    ("local $ref ok", DEFS, {"port": 8080}, True),
    ("local $ref bad", DEFS, {"port": 80}, False),
    ("local $ref missing", {"$ref": "#/$defs/nope"}, {}, None),
    ("remote $ref", {"$ref": "https://example.invalid/s.json"}, {}, None),
    ("nested remote $ref", {"properties": {"a": {"$ref": "http://x.invalid/#/a"}}}, {}, None),
    ("relative $ref", {"$ref": "other.json"}, {}, None),
    ("format email ok", {"properties": {"e": {"format": "email"}}}, {"e": "a@b.org"}, True),
    ("format email bad", {"properties": {"e": {"format": "email"}}}, {"e": "@"}, False),
    ("format date bad", {"properties": {"d": {"format": "date"}}}, {"d": "2024-02-30"}, False),
    ("format date-time", {"properties": {"d": {"format": "date-time"}}}, {"d": "now"}, False),
    ("format ipv4", {"properties": {"i": {"format": "ipv4"}}}, {"i": "1.2.3"}, False),
    ("format uri", {"properties": {"u": {"format": "uri"}}}, {"u": "http://x/y"}, True),
    ("format uri bad", {"properties": {"u": {"format": "uri"}}}, {"u": "no scheme"}, False),
    ("format hostname", {"properties": {"h": {"format": "hostname"}}}, {"h": "-x-"}, False),
    ("unknown format", {"properties": {"x": {"format": "colour"}}}, {"x": "?"}, True),
    ("invalid type name", {"type": "dictionary"}, {}, None),
    (
        "draft 7 tuple items",
        {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "integer"}]},
        {"a": 1},
        True,
    ),
    (
        "2020-12 prefixItems",
        {"properties": {"l": {"prefixItems": [{"type": "integer"}]}}},
        {"l": ["x"]},
        False,
    ),
]


def center_verdict(tmp_path: Path, schema: dict[str, Any], data: Any) -> bool | None:
    definition = {
        "apiVersion": "konorkestra.io/v1",
        "kind": "ConfigSet",
        "metadata": {"name": "app", "version": 1},
        "spec": {"schema": schema, "data": data},
    }
    (tmp_path / "app.yaml").write_text(json.dumps(definition))  # JSON is YAML
    codes = {d.code for d in validate(load_worktree(tmp_path))}
    assert codes <= {"data-schema", "schema-invalid", "schema-ref"}, codes
    if codes & {"schema-invalid", "schema-ref"}:
        return None
    return not codes


def agent_verdict(schema: dict[str, Any], data: Any) -> bool | None:
    blob = canonical_bytes({"schema": schema, "data": data})
    doc = ConfigSetDoc(ConfigSetRef(ConfigSetName("app"), 1, digest_of(blob)), data, schema, ())
    view = ReleaseView(GroupName("g"), Sequence(1), ReleaseId("g-1"), digest_of(b"r"), (doc,))
    try:
        validate_schemas(view)
    except ValidationRefusedError as exc:
        return None if "invalid spec.schema" in exc.message else False
    return True


@pytest.mark.parametrize(("name", "schema", "data", "valid"), CASES, ids=[c[0] for c in CASES])
def test_center_and_agent_agree(
    tmp_path: Path, name: str, schema: dict[str, Any], data: Any, valid: bool | None
) -> None:
    assert center_verdict(tmp_path, schema, data) == valid
    assert agent_verdict(schema, data) == valid


def test_draft_is_the_schemas_own_else_2020_12() -> None:
    assert draft_of({}) == "2020-12"
    assert draft_of({"$schema": "https://json-schema.org/draft/2020-12/schema"}) == "2020-12"
    assert draft_of({"$schema": "http://json-schema.org/draft-07/schema#"}) == "7"
    assert draft_of({"$schema": "https://json-schema.org/draft/2019-09/schema"}) == "2019-09"
    assert draft_of({"$schema": "http://json-schema.org/draft-04/schema#"}) == "4"
    assert draft_of({"$schema": "https://example.org/my-meta"}) == "2020-12"
    compiled = compile_schema({"$schema": "https://example.org/my-meta", "type": "integer"})
    assert compiled.draft == "2020-12" and not compiled.is_valid("x")


@pytest.fixture
def schema_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server holding a schema; records every request it gets."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = b'{"type": "integer"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/s.json", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_reachable_remote_ref_is_still_refused_and_never_fetched(
    schema_server: tuple[str, list[str]],
) -> None:
    url, seen = schema_server
    with pytest.raises(SchemaRefError, match="nothing is fetched"):
        compile_schema({"properties": {"a": {"$ref": url}}})
    assert seen == []


def test_schema_problems_point_inside_the_schema() -> None:
    with pytest.raises(SchemaInvalidError) as meta:
        compile_schema({"properties": {"a": {"type": "dictionary"}}})
    assert meta.value.path == ("properties", "a", "type")
    with pytest.raises(SchemaInvalidError) as regex:
        compile_schema({"properties": {"a": {"pattern": "(a"}}})
    assert regex.value.path == ("properties", "a", "pattern")


def test_errors_come_in_document_order_and_are_capped() -> None:
    schema = compile_schema(
        {
            "required": ["z"],
            "properties": {"b": {"type": "integer"}, "a": {"type": "string"}},
            "additionalProperties": {"maximum": 0},
        }
    )
    data = {"b": "x", "a": 1, "c": 5, "d": 6}
    errors = schema.errors(data)
    assert [e.path for e in errors] == [(), ("b",), ("a",), ("c",), ("d",)]
    assert errors[0].message == '"z" is a required property'
    assert errors[1].message == '"x" is not of type "integer"'
    assert schema.errors(data, limit=2) == errors[:2]
    assert schema.errors({"z": 0}) == []


def test_pointer_escapes_keys() -> None:
    schema = compile_schema({"additionalProperties": {"type": "integer"}})
    [error] = schema.errors({"a/b~c": "x"})
    assert error.pointer == "/a~1b~0c"


def test_compiled_schemas_are_cached_by_canonical_form() -> None:
    one = compile_schema({"type": "object", "required": ["a"]})
    assert compile_schema({"required": ["a"], "type": "object"}) is one


# -- the verdict matches Python jsonschema on structural schemas -----------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-100, 100),
    st.floats(-100, 100, allow_nan=False),
    st.text(max_size=4),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abc"), inner, max_size=3)
    ),
    max_leaves=8,
)
TYPES = st.sampled_from(["null", "boolean", "integer", "number", "string", "array", "object"])
LEAF_SCHEMA = st.one_of(
    st.fixed_dictionaries({"type": TYPES}),
    st.fixed_dictionaries({"minimum": st.integers(-50, 50)}),
    st.fixed_dictionaries({"maximum": st.floats(-50, 50, allow_nan=False)}),
    st.fixed_dictionaries({"maxLength": st.integers(0, 3)}),
    st.fixed_dictionaries({"enum": st.lists(SCALARS, min_size=1, max_size=3)}),
    st.fixed_dictionaries({"const": SCALARS}),
)
SCHEMA = st.recursive(
    LEAF_SCHEMA,
    lambda inner: st.one_of(
        st.fixed_dictionaries(
            {"properties": st.dictionaries(st.sampled_from("abc"), inner, max_size=3)},
            optional={
                "required": st.lists(st.sampled_from("abc"), max_size=2, unique=True),
                "additionalProperties": st.one_of(st.booleans(), inner),
            },
        ),
        st.fixed_dictionaries({"items": inner}, optional={"minItems": st.integers(0, 2)}),
        st.fixed_dictionaries({"anyOf": st.lists(inner, min_size=1, max_size=2)}),
        st.fixed_dictionaries({"not": inner}),
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(SCHEMA, JSON)
def test_verdict_matches_python_jsonschema_on_structural_schemas(
    schema: dict[str, Any], data: Any
) -> None:
    expected = jsonschema.Draft202012Validator(schema).is_valid(data)
    compiled = compile_schema(schema)
    assert compiled.is_valid(data) == expected
    assert (compiled.errors(data) == []) == expected
