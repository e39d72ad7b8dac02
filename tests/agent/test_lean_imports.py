"""The agent's steady state imports only what it uses (issue 17, "A light agent").

Each check runs a fresh interpreter and looks at ``sys.modules``: what a module
imports is behaviour, not timing. ``bench/agent_rss.py --imports`` shows what
each of these costs an idle agent in RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from konorkestra.model import dataschema

# Loaded only by a command line tool, or only to explain a bad data schema.
CLI_ONLY = ("rich", "pygments")
PY_JSONSCHEMA = ("jsonschema", "referencing", "rpds", "attr", "jsonschema_specifications")


def loaded_after(code: str) -> set[str]:
    """Top-level names in ``sys.modules`` after a fresh interpreter runs ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return {name.split(".")[0] for name in json.loads(out.splitlines()[-1])}


def test_agent_run_imports_neither_rich_nor_any_jsonschema() -> None:
    """What ``konorkestra agent run`` imports before it syncs: no schema judge, no rich."""
    loaded = loaded_after(
        "import konorkestra.cli.daemon, konorkestra.cli.agent_cmd, konorkestra.agent.daemon"
    )
    assert "httpx" in loaded and "click" in loaded  # the probe did import the agent
    assert not loaded & {*CLI_ONLY, *PY_JSONSCHEMA, "jsonschema_rs"}


def test_httpx_cli_still_runs_after_the_agent_deferred_it() -> None:
    out = subprocess.run(
        [sys.executable, "-c",
         "import konorkestra.agent, httpx, sys; sys.argv = ['httpx', '--help']; httpx.main()"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "HTTPX" in out.stdout


def test_a_valid_schema_compiles_without_python_jsonschema() -> None:
    loaded = loaded_after(
        "from konorkestra.model.dataschema import compile_schema\n"
        "assert compile_schema({'type': 'object', 'properties': {'port': {'minimum': 1}}})"
        ".is_valid({'port': 8080})"
    )
    assert "jsonschema_rs" in loaded
    assert not loaded & set(PY_JSONSCHEMA)


def test_a_bad_schema_still_gets_pythons_best_match_message() -> None:
    loaded = loaded_after(
        "from konorkestra.model.dataschema import SchemaInvalidError, compile_schema\n"
        "try:\n"
        "    compile_schema({'type': 'object', 'properties': {'port': {'minimum': 'one'}}})\n"
        "except SchemaInvalidError as exc:\n"
        "    assert exc.path == ('properties', 'port', 'minimum'), exc.path\n"
        "    assert exc.message == \"'one' is not of type 'number'\", exc.message\n"
        "else:\n"
        "    raise AssertionError('accepted')"
    )
    assert "jsonschema" in loaded


# -- the Rust meta-schema check never passes a schema Python's refuses ------------------------

_KEYS = ["type", "minimum", "exclusiveMinimum", "pattern", "properties", "items", "required",
         "enum", "const", "minLength", "additionalProperties", "format", "$ref", "$defs",
         "anyOf", "not", "if", "then", "dependentRequired", "dependencies", "prefixItems",
         "contains", "uniqueItems", "$id", "$anchor", "multipleOf", "propertyNames",
         "unevaluatedProperties", "patternProperties", "additionalItems", "examples"]  # fmt: skip
_LEAVES = st.sampled_from([True, False, None, 0, -1, 1.5, "x", "string", "integer", "#/a",
                           "^a(", [], ["a"], ["a", "a"], [1, "x"], [{}], {}, {"a": 5}])  # fmt: skip
_SCHEMAS = st.recursive(
    st.dictionaries(st.sampled_from(_KEYS), _LEAVES, max_size=4),
    lambda inner: st.dictionaries(st.sampled_from(_KEYS), _LEAVES | inner, max_size=4),
    max_leaves=12,
)
_PYTHON = {"2020-12": "Draft202012Validator", "2019-09": "Draft201909Validator",
           "7": "Draft7Validator", "6": "Draft6Validator", "4": "Draft4Validator"}  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(schema=_SCHEMAS, draft=st.sampled_from(sorted(_PYTHON)))
def test_rust_meta_check_passes_only_what_python_passes(schema: dict[str, object],
                                                        draft: str) -> None:  # fmt: skip
    """The fast path may send a valid schema to Python, never skip Python for a bad one."""
    if dataschema._rust_meta_valid(schema, draft):
        cls = getattr(jsonschema, _PYTHON[draft])
        assert not list(cls(cls.META_SCHEMA).iter_errors(schema))


def test_draft_4_always_gets_pythons_check() -> None:
    """jsonschema-rs's draft 4 meta-schema accepts an empty ``enum``; Python's does not."""
    assert not dataschema._rust_meta_valid({"enum": []}, "4")
