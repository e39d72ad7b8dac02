"""``/v1/openapi.json``: the OpenAPI 3.1 document of the operator API.

Invariant: every route of the operator API (the wings' routes of an app built
from a context without ``enrollment``, ``agent_api`` or ``tls_self_test``) is
listed here with the role it needs (``x-konorkestra-role``; absent for public
routes), the statuses it answers besides the common errors
(:data:`EXTRA_RESPONSES`) and the values a path parameter takes
(:data:`PARAMETER_VALUES`); a test compares this table with the app's routes
so the two cannot drift apart. The node, agent and self-test routes are documented in
``docs/`` (reference), not here.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from konorkestra import __version__
from konorkestra.rollout.inputs import COMMANDS

# (method, path, role or None for public, summary, success status)
OPERATIONS: tuple[tuple[str, str, str | None, str, int], ...] = (
    ("get", "/healthz", None, "The process is up", 200),
    ("get", "/readyz", None, "The store answers and every service is ready", 200),
    ("get", "/metrics", None, "Prometheus metrics", 200),
    ("get", "/v1/openapi.json", None, "This document", 200),
    ("get", "/v1/trust/root", None, "The signed trust root agents pin", 200),
    ("get", "/v1/commits", "viewer", "Ingested commits, newest first (?limit, ?before)", 200),
    ("get", "/v1/commits/{sha}", "viewer", "One commit with diagnostics and its releases", 200),
    ("get", "/v1/groups", "viewer", "Groups as of the latest accepted commit", 200),
    ("get", "/v1/groups/{name}", "viewer", "One group, its releases and convergence", 200),
    ("get", "/v1/releases", "viewer", "Releases, newest first (?group, ?limit)", 200),
    ("post", "/v1/releases", "operator", "Create a Release by hand (e.g. a rollback)", 201),
    ("get", "/v1/releases/{id}", "viewer", "One release, its bundle and convergence", 200),
    ("get", "/v1/releases/{id}/bundle", "viewer", "The raw Sigstore bundle bytes", 200),
    ("get", "/v1/rollouts", "viewer", "The status of each Group's latest rollout", 200),
    ("get", "/v1/rollouts/{group}", "viewer", "One Group's rollout and its earlier ones", 200),
    ("post", "/v1/rollouts/{group}/{command}", "operator", "Steer a Group's rollout", 200),
    ("get", "/v1/blobs/{digest}", "viewer", "Content-addressed blob bytes", 200),
    ("get", "/v1/audit", "viewer", "Audit events in order (?after, ?limit)", 200),
    ("get", "/v1/audit/verify", "viewer", "Recompute the audit hash chain", 200),
    (
        "get",
        "/v1/audit/checkpoint",
        "viewer",
        "The audit head (or ?seq) signed by the timestamp role",
        200,
    ),
    ("post", "/v1/hooks/git", "operator", "Look at the Git repository now (?wait)", 202),
    ("get", "/v1/tokens", "admin", "API tokens (never their secrets)", 200),
    ("post", "/v1/tokens", "admin", "Issue an API token (shown once)", 201),
    ("delete", "/v1/tokens/{id}", "admin", "Revoke an API token", 200),
)

# Path parameters that take one of a fixed set of values.
PARAMETER_VALUES: dict[str, tuple[str, ...]] = {"command": COMMANDS}

# Statuses an operation answers besides its success and the common errors, by
# (method, path): status -> (description, body schema; None for the Error schema).
# An error's description starts with its stable ``code``.
EXTRA_RESPONSES: dict[tuple[str, str], dict[str, tuple[str, dict[str, Any] | None]]] = {
    ("post", "/v1/rollouts/{group}/{command}"): {
        "202": (
            "queued: another Center drives the rollouts; it applies the command",
            {
                "type": "object",
                "required": ["queued", "group", "command"],
                "properties": {
                    "queued": {"type": "integer"},
                    "group": {"type": "string"},
                    "command": {"type": "string"},
                },
            },
        ),
        "409": (
            "rollout_conflict: the command does not apply in the rollout's phase"
            " (details.phase, details.release), or the rollout moved before the runner"
            " applied it (details.command, details.queued)",
            None,
        ),
        "422": ('invalid: the body is not {"reason": <at most 1000 characters>}', None),
        "503": ("unavailable: this Center does not run rollouts", None),
    },
    ("get", "/v1/audit/checkpoint"): {
        "404": ("not_found: ?seq is past the audit log's head", None),
        "503": ("unavailable: this Center holds no timestamp key", None),
    },
}

# Optional JSON request bodies, by (method, path).
REQUEST_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/rollouts/{group}/{command}"): {
        "type": "object",
        "additionalProperties": False,
        "properties": {"reason": {"type": "string", "maxLength": 1000}},
    },
}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


def _schema(param: str) -> dict[str, Any]:
    values = PARAMETER_VALUES.get(param)
    return {"type": "string", "enum": list(values)} if values else {"type": "string"}


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, role, summary, status in OPERATIONS:
        responses: dict[str, Any] = {str(status): {"description": "success"}}
        error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        codes = ["400", "404", "500"] + (["401", "403"] if role else [])
        for code in codes:
            responses[code] = {"description": "error", "content": error_ref}
        for code, (text, schema) in EXTRA_RESPONSES.get((method, path), {}).items():
            content = error_ref if schema is None else {"application/json": {"schema": schema}}
            responses[code] = {"description": text, "content": content}
        op: dict[str, Any] = {"summary": summary, "responses": responses}
        if role:
            op["security"] = [{"bearer": []}]
            op["x-konorkestra-role"] = role
        params = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": _schema(p)} for p in params
            ]
        body = REQUEST_BODIES.get((method, path))
        if body is not None:
            op["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": body}},
            }
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Konorkestra Center", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi(_request: Request) -> Response:
    return JSONResponse(document())
