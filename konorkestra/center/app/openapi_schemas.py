"""The JSON Schemas of ``/v1/openapi.json``'s ``components/schemas``: every answer's shape.

Example::

    from konorkestra.center.app.openapi_schemas import SCHEMAS, ref
    SCHEMAS["Release"]["required"]          # the keys every Release answer holds
    ref("Release")                          # {"$ref": "#/components/schemas/Release"}

Invariants:

* Each schema is what the handler that answers it builds (the ``to_json`` it
  calls is named beside it); the contract test validates real answers of a
  running Center against them, so a renamed or retyped key fails a test.
* Objects list every key they always carry as ``required`` and stay open to new
  keys (no ``additionalProperties: false`` on answers): a client must ignore a key
  it does not know. Request bodies that refuse unknown fields say so.
* A value that may be ``null`` says so (:func:`nullable`); times are RFC 3339 text.
* Pure data: nothing here reads the app, the store or the clock.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
DIGEST: Schema = {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}
STRINGS: Schema = {"type": "array", "items": STR}
LABELS: Schema = {"type": "object", "additionalProperties": STR}
ROLES = ["viewer", "operator", "admin"]
STRATEGIES = ["all-at-once", "canary", "linear"]


def ref(name: str) -> Schema:
    """A reference to ``components/schemas/<name>``."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or ``null``."""
    return {"oneOf": [schema, {"type": "null"}]}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def obj(props: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    """An object whose keys are ``props``, all required except ``optional``."""
    required = [k for k in props if k not in optional]
    return {"type": "object", "required": required, "properties": props}


def extend(base: str, props: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    """``base`` plus ``props`` (all required except ``optional``)."""
    return {"allOf": [ref(base), obj(props, optional=optional)]}


def _counts(*names: str) -> Schema:
    return obj({n: {"type": "integer", "minimum": 0} for n in names})


_NODE_COUNTS = ("targeted", "committed", "behind", "newer", "refused", "stale", "failed")

# The operator API's answers (the fleet's and the agents' are openapi_fleet's) ----
ANSWERS: dict[str, Schema] = {
    "Health": obj({"status": {"const": "ok"}}),
    "Ready": obj({"ready": BOOL, "checks": {"type": "object", "additionalProperties": STR}}),
    "JsonObject": {"type": "object", "description": "A JSON object (its own format)."},
    # model.release.ConfigSetRef / PolicyRef / Release .to_json
    "ConfigSetRef": obj(
        {
            "name": STR,
            "version": {"type": "integer", "minimum": 1},
            "digest": DIGEST,
            "size": nullable({"type": "integer", "minimum": 0}),
        }
    ),
    "PolicyRef": obj({"name": STR, "digest": DIGEST, "strategy": nullable(STR)}),
    "Release": obj(
        {
            "id": STR,
            "group": STR,
            "sequence": {"type": "integer", "minimum": 1},
            "digest": DIGEST,
            "state": nullable(STR),
            "commit": nullable(STR),
            "configsets": array(ref("ConfigSetRef")),
            "policy": ref("PolicyRef"),
            "previous_id": nullable(STR),
            "reason": nullable(STR),
            "created_by": nullable(STR),
            "created_at": TIME,
            "expires_at": TIME,
        }
    ),
    "Releases": obj({"releases": array(ref("Release"))}),
    "SigstoreBundle": {
        "type": "object",
        "required": ["mediaType", "verificationMaterial"],
        "properties": {
            "mediaType": STR,
            "verificationMaterial": {"type": "object"},
            "dsseEnvelope": {"type": "object"},
        },
    },
    # releases.convergence.Convergence.to_json
    "Convergence": obj(
        {
            "release": STR,
            "group": STR,
            "sequence": INT,
            "latest": BOOL,
            "nodes": _counts(*_NODE_COUNTS),
            "processes": _counts("delivered", "applied", "failed"),
            "partial": BOOL,
        }
    ),
    "ReleaseDetail": extend(
        "Release", {"bundle": ref("SigstoreBundle"), "convergence": ref("Convergence")}
    ),
    # releases.rows.GroupView.to_json
    "Group": obj(
        {
            "name": STR,
            "defined": BOOL,
            "commit": nullable(STR),
            "policy": nullable(obj({"name": STR, "digest": DIGEST})),
            "configsets": nullable(array(ref("ConfigSetRef"))),
            "latest_release": nullable(ref("Release")),
        }
    ),
    "Groups": obj({"groups": array(ref("Group"))}),
    "GroupDetail": extend(
        "Group", {"releases": array(ref("Release")), "convergence": nullable(ref("Convergence"))}
    ),
    # ingest.queries.CommitRecord.to_json
    "Commit": obj(
        {
            "seq": INT,
            "sha": STR,
            "parent": nullable(STR),
            "branch": STR,
            "author": STR,
            "committed_at": nullable(TIME),
            "subject": STR,
            "status": {"type": "string", "enum": ["accepted", "rejected"]},
            "ingested_at": nullable(TIME),
            "errors": {"type": "integer", "minimum": 0},
            "diagnostics_count": {"type": "integer", "minimum": 0},
            "first_diagnostic": {
                "description": "the first error, else the first diagnostic, else null",
                **nullable(ref("Diagnostic")),
            },
        }
    ),
    "Commits": obj({"commits": array(ref("Commit"))}),
    # repo.diagnostics.Diagnostic.to_dict, as stored
    "Diagnostic": obj(
        {
            "code": STR,
            "message": STR,
            "severity": {"type": "string", "enum": ["error", "warning"]},
            "file": nullable(STR),
            "line": nullable(INT),
            "column": nullable(INT),
            "kind": nullable(STR),
            "name": nullable(STR),
            "path": {"type": "string", "description": "JSON pointer into the document"},
            "hint": nullable(STR),
        },
        optional=("file", "line", "column", "kind", "name", "path", "hint"),
    ),
    "CommitDetail": extend(
        "Commit",
        {"diagnostics": array(ref("Diagnostic")), "releases": array(ref("Release"))},
        optional=("releases",),
    ),
    "IngestStatus": obj(
        {
            "repo": STR,
            "branch": STR,
            "passes": INT,
            "pending": BOOL,
            "leader": BOOL,
            "last_pass_at": nullable(TIME),
            "last_error": nullable(STR),
            "last_commit": nullable(obj({"sha": STR, "status": STR})),
        }
    ),
    "HookAccepted": obj({"ticket": INT, "done": BOOL, "ingest": ref("IngestStatus")}),
    # store.audit.AuditEvent.to_json, ChainResult.to_dict
    "AuditEvent": obj(
        {
            "seq": {"type": "integer", "minimum": 1},
            "at": TIME,
            "actor": STR,
            "action": STR,
            "details": {"type": "object"},
            "prev_hash": STR,
            "hash": STR,
        }
    ),
    "AuditPage": obj({"events": array(ref("AuditEvent")), "next": nullable(INT)}),
    "ChainResult": obj(
        {"ok": BOOL, "count": INT, "head": STR, "first_bad": nullable(INT), "reason": nullable(STR)}
    ),
    # operators.apitokens.ApiTokenInfo.to_json
    "ApiToken": obj(
        {
            "id": STR,
            "name": STR,
            "role": {"type": "string", "enum": ROLES},
            "created_at": nullable(STR),
            "revoked_at": nullable(STR),
        }
    ),
    "ApiTokens": obj({"tokens": array(ref("ApiToken"))}),
    "NewApiToken": extend("ApiToken", {"token": {"type": "string", "pattern": "^kt_"}}),
    "Revoked": obj({"id": STR, "revoked": {"const": True}}),
}
