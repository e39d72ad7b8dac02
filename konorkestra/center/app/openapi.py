"""``/v1/openapi.json``: the OpenAPI 3.1 document of every route of a full Center.

Example::

    from konorkestra.center.app.openapi import document
    doc = document()
    doc["paths"]["/v1/agent/desired"]["get"]["security"]      # [{"mutualTLS": []}]

Invariants:

* The document is built from :data:`~konorkestra.center.app.openapi_ops.OPERATIONS`
  (one row per route) and the named schemas of
  :mod:`~konorkestra.center.app.openapi_schemas` and
  :mod:`~konorkestra.center.app.openapi_fleet`; it is the same for every app
  (an app without enrollment or the agent API answers those paths 404).
* Every operation has a summary, its path and query parameters (types, enums,
  defaults), its request body's schema, its success answer's schema (or media
  type), an ``Error`` answer for each error status it can answer, and its
  security: ``bearer`` with ``x-konorkestra-role`` for the operator API,
  ``mutualTLS`` (a node client certificate) for agent routes, none for public
  ones and for enrollment (the join token in the body is the credential;
  ``x-konorkestra-credential: join-token``).
* Tests check it three ways (``tests/center/app/test_openapi_contract.py``): its
  paths are exactly the app's routes, it is a valid OpenAPI 3.1 document, and
  each route's real answer validates against its schema. ``docs/reference/api.md``
  is generated from it (:mod:`konorkestra.center.app.openapi_md`).
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from konorkestra import __version__
from konorkestra.center.app.openapi_fleet import FLEET, REQUESTS
from konorkestra.center.app.openapi_ops import (
    OPERATIONS,
    PATH_PARAMS,
    ROLES,
    SUCCESS_BODIES,
    Operation,
    error_statuses,
)
from konorkestra.center.app.openapi_schemas import ANSWERS, ref

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "stable, machine-readable"},
                "message": {"type": "string", "description": "one sentence for a person"},
                "details": {"type": "object"},
            },
        }
    },
}

SCHEMAS: dict[str, Any] = {"Error": _ERROR, **ANSWERS, **FLEET, **REQUESTS}
"""Every named schema of the document (``components/schemas``)."""

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (kt_<id>.<secret>); x-konorkestra-role names the"
        " lowest role that may call the operation (viewer < operator < admin).",
    },
    "mutualTLS": {
        "type": "mutualTLS",
        "description": "A node client certificate issued at enrollment, verified against"
        " the Center's CA, of a node that is not revoked.",
    },
}


def _json(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": schema}}


def _success(op: Operation) -> dict[str, Any]:
    if op.answer is not None:
        return {"description": op.summary, "content": _json(ref(op.answer), op.media)}
    text = {"type": "string"}
    if op.media == "application/octet-stream":
        text = {**text, "contentMediaType": op.media}
    return {"description": op.summary, "content": _json(text, op.media)}


def operation(op: Operation) -> dict[str, Any]:
    """The OpenAPI Operation Object of ``op``."""
    responses: dict[str, Any] = {str(op.status): _success(op)}
    for status, text in error_statuses(op).items():
        body = SUCCESS_BODIES.get((op.method, op.path, status), "Error")
        responses[str(status)] = {"description": text, "content": _json(ref(body))}
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{op.method}{op.path}".replace("/", "_")
        .replace("{", "")
        .replace("}", "")
        .replace(".", "_")
        .replace("-", "_"),
        "responses": responses,
    }
    if op.description:
        out["description"] = op.description
    if op.auth in ROLES:
        out["security"] = [{"bearer": []}]
        out["x-konorkestra-role"] = op.auth
    elif op.auth == "node":
        out["security"] = [{"mutualTLS": []}]
    else:
        out["security"] = []
        if op.auth == "join-token":
            out["x-konorkestra-credential"] = "join-token"
    params = [
        {"name": p, "in": "path", "required": True, "description": PATH_PARAMS[p][1],
         "schema": PATH_PARAMS[p][0]}
        for p in (seg[1:-1] for seg in op.path.split("/") if seg.startswith("{"))
    ]  # fmt: skip
    params += [
        {"name": q.name, "in": "query", "required": False, "description": q.description,
         "schema": q.schema}
        for q in op.query
    ]  # fmt: skip
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": op.body_required, "content": _json(ref(op.body))}
    return out


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document (a fresh copy each call)."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Konorkestra Center",
            "version": __version__,
            "description": "Operator API (bearer tokens), node enrollment and the agent API"
            " (mTLS). Every error has the Error shape.",
        },
        "paths": paths,
        "components": copy.deepcopy({"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES}),
    }


async def openapi(_request: Request) -> Response:
    return JSONResponse(document())
