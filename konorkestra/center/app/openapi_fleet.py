"""The JSON Schemas of rollouts, nodes, join tokens, agents, and of request bodies.

Example::

    from konorkestra.center.app.openapi_fleet import FLEET, REQUESTS
    FLEET["RolloutStatus"]["required"]      # what GET /v1/rollouts/{group} always answers

Invariants: those of :mod:`konorkestra.center.app.openapi_schemas` (each schema is
the shape its handler builds; answers stay open to new keys). Request bodies
whose handler refuses unknown fields (``POST /v1/releases``, a rollout command)
say ``additionalProperties: false``; the others ignore unknown fields.
"""

from __future__ import annotations

from konorkestra.center.app.openapi_schemas import (
    BOOL,
    DIGEST,
    INT,
    LABELS,
    NUM,
    ROLES,
    STR,
    STRATEGIES,
    STRINGS,
    TIME,
    Schema,
    array,
    extend,
    nullable,
    obj,
    ref,
)
from konorkestra.rollout.inputs import COMMANDS

PHASES = ["waving", "baking", "awaiting_approval", "paused", "completed", "rolled_back", "aborted"]
_SHORT_REF = obj({"id": STR, "sequence": INT})
_TEXT_1000: Schema = {"type": "string", "maxLength": 1000}

# rollouts.status.status_json, rollouts.control.history_json ---------------------------
ROLLOUTS: dict[str, Schema] = {
    "RolloutWave": obj(
        {
            "step": INT,
            "percent": NUM,
            "bake_seconds": NUM,
            "selector": LABELS,
            "state": {"type": "string", "enum": ["done", "current", "pending"]},
            "nodes": INT,
            "committed": INT,
            "applied": INT,
            "failed": INT,
            "stale": INT,
        }
    ),
    "GuardReading": obj(
        {
            "signal": STR,
            "threshold": NUM,
            "value": nullable(NUM),
            "status": {"type": "string", "enum": ["pass", "pending", "breach"]},
            "detail": STR,
        }
    ),
    "RolloutStatus": obj(
        {
            "group": STR,
            "release": _SHORT_REF,
            "stable": nullable(_SHORT_REF),
            "rollback": nullable(_SHORT_REF),
            "phase": {"type": "string", "enum": PHASES},
            "paused_from": nullable({"type": "string", "enum": PHASES}),
            "reason": STR,
            "step": INT,
            "steps": INT,
            "policy": obj({"name": STR, "strategy": STR, "approval": STR, "onFailure": STR}),
            "started_at": nullable(TIME),
            "updated_at": nullable(TIME),
            "wave_deadline": nullable(TIME),
            "wave_deadline_left_seconds": nullable(NUM),
            "bake_until": nullable(TIME),
            "bake_left_seconds": nullable(NUM),
            "nodes": obj({"enrolled": INT, "targeted": INT, "stable": INT}),
            "waiting_for_nodes": BOOL,
            "waves": array(ref("RolloutWave")),
            "guards": array(ref("GuardReading")),
            "approvals": array(
                obj({"step": INT, "actor": STR, "reason": STR, "at": nullable(TIME)})
            ),
            "superseded": STRINGS,
            "revision": INT,
        }
    ),
    "Rollouts": obj({"rollouts": array(ref("RolloutStatus"))}),
    "RolloutDetail": extend(
        "RolloutStatus",
        {
            "history": array(
                obj(
                    {
                        "release": STR,
                        "phase": STR,
                        "reason": STR,
                        "started_at": nullable(TIME),
                        "updated_at": nullable(TIME),
                    }
                )
            )
        },
    ),
    "RolloutQueued": obj(
        {"queued": INT, "group": STR, "command": {"type": "string", "enum": list(COMMANDS)}}
    ),
}

# nodes.routes (node_json, join_token_json, enroll, renew), nodes.fold ---------------
_PROCESS = obj(
    {
        "pid": INT,
        "uid": nullable(INT),
        "gid": nullable(INT),
        "exe": nullable(STR),
        "start_time": nullable(INT),
        "client": nullable(STR),
        "release": nullable(STR),
        "sequence": nullable(INT),
        "seen_at": nullable(TIME),
        "via": nullable(STR),
        "ack": nullable(
            obj({"release": STR, "status": STR, "error": nullable(STR), "at": nullable(TIME)})
        ),
    }
)
NODES: dict[str, Schema] = {
    "Node": obj(
        {
            "id": STR,
            "name": STR,
            "groups": STRINGS,
            "labels": LABELS,
            "status": {"type": "string", "enum": ["active", "revoked"]},
            "cert_serial": nullable(STR),
            "cert_not_after": nullable(TIME),
            "revoked_at": nullable(TIME),
            "last_seen": nullable(TIME),
            "created_at": nullable(TIME),
        }
    ),
    "Nodes": obj({"nodes": array(ref("Node"))}),
    "NodeGroupState": obj(
        {
            "group": STR,
            "applied": nullable(obj({"release": STR, "sequence": INT, "at": nullable(TIME)})),
            "stale": nullable(BOOL),
            "refused": nullable(
                obj(
                    {
                        "release": nullable(STR),
                        "sequence": nullable(INT),
                        "code": nullable(STR),
                        "reason": nullable(STR),
                        "at": nullable(TIME),
                    }
                )
            ),
            "processes": array(_PROCESS),
        }
    ),
    "NodeDetail": extend("Node", {"state": array(ref("NodeGroupState"))}),
    "JoinToken": obj(
        {
            "id": STR,
            "groups": STRINGS,
            "labels": LABELS,
            "node_name": nullable(STR),
            "status": {"type": "string", "enum": ["active", "used", "expired", "revoked"]},
            "expires_at": TIME,
            "used_at": nullable(TIME),
            "used_by": nullable(STR),
            "revoked_at": nullable(TIME),
            "created_by": STR,
            "created_at": nullable(TIME),
        }
    ),
    "JoinTokens": obj({"tokens": array(ref("JoinToken"))}),
    "NewJoinToken": extend("JoinToken", {"token": STR, "ca_pin": STR}),
    "NewJoinTokens": obj({"tokens": array(ref("NewJoinToken")), "count": INT, "ca_pin": STR}),
    "JoinTokenCreated": {
        "description": "one token; a batch when the request body has count",
        "anyOf": [ref("NewJoinToken"), ref("NewJoinTokens")],
    },
    "JoinTokenRevoked": obj({"id": STR, "status": {"const": "revoked"}}),
    "Enrolled": obj(
        {
            "node_id": STR,
            "name": STR,
            "certificate": STR,
            "not_after": TIME,
            "ca": STR,
            "trust_root": STR,
            "scope": obj({"groups": STRINGS, "labels": LABELS}),
        }
    ),
    "Renewed": obj({"certificate": STR, "not_after": TIME}),
    "SelfTest": obj({"node_id": nullable(STR)}),
}

# agentapi (answer.py, entries.py, routes.reports) -------------------------------------
AGENTS: dict[str, Schema] = {
    "OfferedRelease": obj(
        {
            "group": STR,
            "sequence": INT,
            "id": STR,
            "digest": DIGEST,
            "bundle": {"type": "string", "contentEncoding": "base64"},
            "blobs": {
                "type": "object",
                "additionalProperties": {"type": "string", "contentEncoding": "base64"},
            },
        },
        optional=("blobs",),
    ),
    "Desired": obj(
        {
            "node": STR,
            "releases": array(ref("OfferedRelease")),
            "freshness": {"type": "string", "contentEncoding": "base64"},
            "wait": NUM,
        }
    ),
    "StreamLine": {
        "description": "One line of the stream: a desired-state answer, an empty line"
        ' (heartbeat, not JSON), or {"closed": <reason>} before the body ends.',
        "oneOf": [ref("Desired"), obj({"closed": STR})],
    },
    "ReportStored": obj({"stored": {"type": "integer", "minimum": 0}}),
}

_AT: Schema = {"type": "number", "description": "seconds since the epoch"}
_PROC_IN = obj(
    {"pid": INT, "uid": INT, "gid": INT, "exe": STR, "start_time": INT},
    optional=("uid", "gid", "exe", "start_time"),
)

# Request bodies ------------------------------------------------------------------------
REQUESTS: dict[str, Schema] = {
    "CreateRelease": {
        **obj(
            {
                "group": {"type": "string", "minLength": 1},
                "configsets": {**STRINGS, "description": "name@version (or name@vN)"},
                "strategy": {"type": "string", "enum": STRATEGIES},
                "reason": _TEXT_1000,
            },
            optional=("configsets", "strategy", "reason"),
        ),
        "additionalProperties": False,
    },
    "RolloutCommand": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"reason": _TEXT_1000},
    },
    "GitHook": {
        "type": "object",
        "description": "optional; the post-receive hook sends the pushed refs (only logged)",
        "properties": {"refs": array(obj({"old": STR, "new": STR, "ref": STR}))},
    },
    "CreateApiToken": obj(
        {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "role": {"type": "string", "enum": ROLES},
        }
    ),
    "CreateJoinToken": obj(
        {
            "groups": STRINGS,
            "labels": LABELS,
            "node_name": STR,
            "ttl_seconds": {"type": "integer", "default": 900},
            "count": {"type": "integer", "description": "set: answer a batch of this many"},
        },
        optional=("labels", "node_name", "ttl_seconds", "count"),
    ),
    "Enroll": obj(
        {
            "token": {"type": "string", "description": "the join token (the credential)"},
            "csr": {"type": "string", "description": "PEM PKCS#10 request for a P-256 key"},
            "name": STR,
        },
        optional=("name",),
    ),
    "Renew": obj({"csr": {"type": "string", "description": "PEM PKCS#10, a new key"}}),
    "Report": {
        "type": "object",
        "description": "what the node saw; every list optional, at most 2000 items each",
        "properties": {
            "applied": array(
                obj(
                    {"group": STR, "release": STR, "sequence": INT, "digest": STR, "at": _AT},
                    optional=("digest", "at"),
                )
            ),
            "refused": array(
                obj(
                    {
                        "group": STR,
                        "release": STR,
                        "sequence": INT,
                        "code": STR,
                        "reason": STR,
                        "at": _AT,
                    },
                    optional=("group", "release", "sequence", "at"),
                )
            ),
            "events": array(
                obj(
                    {
                        "kind": {"type": "string", "enum": ["delivery", "ack", "report"]},
                        "at": _AT,
                        "group": STR,
                        "process": _PROC_IN,
                    },
                    optional=("at", "group", "process"),
                )
            ),
            "dropped": {"type": "integer", "minimum": 0},
            "stale": {"type": "object", "additionalProperties": BOOL},
            "errors": array(obj({"kind": STR, "message": STR, "at": _AT}, optional=("at",))),
        },
    },
}

FLEET: dict[str, Schema] = {**ROLLOUTS, **NODES, **AGENTS}
"""The answers of the rollout, node and agent routes."""
