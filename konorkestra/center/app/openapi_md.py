"""Render ``/v1/openapi.json`` as Markdown into ``docs/reference/api.md``.

Example::

    python -m konorkestra.center.app.openapi_md            # rewrite the generated section
    python -m konorkestra.center.app.openapi_md --check    # exit 1 if it is out of date

Invariants:

* Only the text between :data:`BEGIN` and :data:`END` in api.md is generated;
  the hand-written prose around it (authentication, errors, request bodies,
  rollouts, …) is kept byte for byte.
* The generated text is a pure function of :func:`konorkestra.center.app.openapi.document`
  and :data:`~konorkestra.center.app.openapi_ops.EXCLUDED` (:func:`render`): the same
  document gives the same bytes, so a test can compare the committed file with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from konorkestra.center.app.openapi import document
from konorkestra.center.app.openapi_ops import EXCLUDED

BEGIN = "<!-- BEGIN generated from /v1/openapi.json by konorkestra.center.app.openapi_md -->"
END = "<!-- END generated -->"
API_MD = Path(__file__).resolve().parents[3] / "docs" / "reference" / "api.md"
REGENERATE = "python -m konorkestra.center.app.openapi_md"


def anchor(name: str) -> str:
    """The Markdown anchor of schema ``name``'s heading (``#### schema: <name>``)."""
    return f"schema-{name.lower()}"


def _name(schema: dict[str, Any]) -> str | None:
    target = schema.get("$ref")
    return None if target is None else str(target).rsplit("/", 1)[1]


def type_of(schema: dict[str, Any]) -> str:
    """A short human spelling of ``schema``'s type: ``string``, ``[Release]``, ``int | null``."""
    if (name := _name(schema)) is not None:
        return f"[{name}](#{anchor(name)})"
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " \\| ".join(type_of(s) for s in schema[key])
    if "allOf" in schema:
        return " + ".join(type_of(s) for s in schema["allOf"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    kind = schema.get("type", "any")
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if kind == "array":
        return f"list of {type_of(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {type_of(schema['additionalProperties'])}"
    if kind == "object" and "properties" in schema:
        required = set(schema.get("required", ()))
        inner = ", ".join(f"`{k}`{'' if k in required else '?'}: {type_of(v)}"
                          for k, v in schema["properties"].items())  # fmt: skip
        return f"object {{{inner}}}"
    if kind == "string" and "format" in schema:
        return f"{kind} ({schema['format']})"
    if kind == "string" and "pattern" in schema:
        return f"string `{schema['pattern']}`"
    return str(kind)


def _auth(op: dict[str, Any]) -> str:
    if "x-konorkestra-role" in op:
        return str(op["x-konorkestra-role"])
    if op["security"] == [{"mutualTLS": []}]:
        return "node (mTLS)"
    return "join token" if op.get("x-konorkestra-credential") else "—"


def _answer(op: dict[str, Any]) -> str:
    status = next(s for s in op["responses"] if s.startswith("2"))
    [(media, body)] = op["responses"][status]["content"].items()
    what = type_of(body["schema"]) if "$ref" in body["schema"] else f"`{media}`"
    return f"{status} {what}"


def _params(op: dict[str, Any]) -> str:
    query = [p for p in op.get("parameters", ()) if p["in"] == "query"]
    return "?" + "&".join(f"{p['name']}=" for p in query) if query else ""


def route_table(doc: dict[str, Any]) -> list[str]:
    lines = ["| method | path | auth | answer | errors | what |", "|---|---|---|---|---|---|"]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            errors = " ".join(s for s in op["responses"] if s[0] in "45")
            lines.append(
                f"| {method.upper()} | `{path}{_params(op)}` | {_auth(op)} | {_answer(op)}"
                f" | {errors} | {op['summary']} |"
            )
    return lines


def parameters(doc: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            params = op.get("parameters", [])
            body = op.get("requestBody")
            if not params and not body:
                continue
            lines.append(f"- `{method.upper()} {path}`")
            for p in params:
                extra = [f"{k} {p['schema'][k]}" for k in ("minimum", "maximum", "default")
                         if k in p["schema"]]  # fmt: skip
                more = f" ({', '.join(extra)})" if extra else ""
                lines.append(f"  - {p['in']} `{p['name']}`: {type_of(p['schema'])}{more}"
                             f" — {p['description']}")  # fmt: skip
            if body:
                need = "required" if body["required"] else "optional"
                schema = body["content"]["application/json"]["schema"]
                lines.append(f"  - body ({need}): {type_of(schema)}")
    return lines


def schema_lines(name: str, schema: dict[str, Any]) -> list[str]:
    parts = schema.get("allOf", [schema])
    out = [f"#### schema: {name}", ""]
    if "description" in schema:
        out += [str(schema["description"]), ""]
    bases = [type_of(p) for p in parts if "$ref" in p]
    if bases:
        out += [f"{' + '.join(bases)}, and:", ""]
    if "oneOf" in schema or "anyOf" in schema:
        out += [f"One of: {type_of(schema)}", ""]
    for part in parts:
        required = set(part.get("required", ()))
        for key, sub in part.get("properties", {}).items():
            flag = "" if key in required else " (optional)"
            note = f" — {sub['description']}" if "description" in sub else ""
            out.append(f"- `{key}`: {type_of(sub)}{flag}{note}")
    if schema.get("additionalProperties") is False:
        out.append("- no other field")
    return [*out, ""]


def render(doc: dict[str, Any]) -> str:
    """The generated section of api.md (without the markers)."""
    lines = [
        f"Generated from `GET /v1/openapi.json` (OpenAPI {doc['openapi']}); regenerate with"
        f" `{REGENERATE}`. Auth: a role needs a bearer API token of that role or higher;"
        " *node (mTLS)* a node client certificate; *join token* the token in the body;"
        " — none. Every error status answers the [Error](#schema-error) shape.",
        "",
        "### Route table",
        "",
        *route_table(doc),
        "",
        "Not in the document: "
        + "; ".join(f"`{path}`: {why}" for path, why in EXCLUDED.items())
        + ".",
        "",
        "### Parameters and request bodies",
        "",
        *parameters(doc),
        "",
        "### Schemas",
        "",
    ]
    for name, schema in doc["components"]["schemas"].items():
        lines += schema_lines(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def splice(text: str, generated: str) -> str:
    """``text`` with the part between the markers replaced by ``generated``."""
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"api.md lacks the markers {BEGIN!r} ... {END!r}")
    return f"{head}{BEGIN}\n\n{generated}\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if api.md is out of date")
    parser.add_argument("--file", type=Path, default=API_MD)
    args = parser.parse_args(argv)
    current = args.file.read_text(encoding="utf-8")
    wanted = splice(current, render(document()))
    if args.check:
        if wanted != current:
            print(f"{args.file} is out of date: run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        args.file.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
