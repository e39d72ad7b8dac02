"""Every route of a full Center as a row: who may call it, what it takes, what it answers.

Example::

    from konorkestra.center.app.openapi_ops import OPERATIONS
    [op.path for op in OPERATIONS if op.auth == "node"]   # the mTLS routes

Invariants:

* One :class:`Operation` per (method, path) the app of
  :func:`konorkestra.center.app.server.build` serves, except the dashboard's HTML
  (:data:`EXCLUDED`, with the reason); the contract test walks that app's route
  table and fails on a route missing here or a row no route serves.
* ``auth`` is ``public``, an operator role (``viewer`` < ``operator`` <
  ``admin``: bearer API token), ``node`` (a verified node client certificate,
  mTLS) or ``join-token`` (the join token in the body is the credential).
* ``answer`` names the success body's schema in ``components/schemas`` (``None``:
  not JSON, ``media`` says what). ``errors`` are the statuses the handler raises
  itself; :func:`error_statuses` adds those every route of its kind can answer.
* Pure data and one pure function; nothing here touches the app.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from konorkestra.center.app.openapi_schemas import DIGEST, Schema
from konorkestra.rollout.inputs import COMMANDS

ROLES = ("viewer", "operator", "admin")

EXCLUDED: dict[str, str] = {
    "/": "redirects a browser to /ui/ (the dashboard: HTML, session cookie, not the API)",
    "/ui": "the dashboard's HTML pages, forms and static files (session cookie + CSRF,"
    " not the API)",
}
"""Route paths (a route or a mount) of the app that the document leaves out, and why."""


@dataclass(frozen=True)
class Param:
    """A query parameter."""

    name: str
    schema: Schema
    description: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    auth: str
    status: int
    answer: str | None
    media: str = "application/json"
    query: tuple[Param, ...] = ()
    body: str | None = None
    body_required: bool = True
    errors: dict[int, str] = field(default_factory=dict)
    description: str = ""


PATH_PARAMS: dict[str, tuple[Schema, str]] = {
    "sha": ({"type": "string", "pattern": "^[0-9a-fA-F]{4,64}$"},
            "a full commit sha or a unique prefix of at least 4 hex digits"),
    "name": ({"type": "string"}, "a Group name"),
    "group": ({"type": "string"}, "a Group name"),
    "id": ({"type": "string"}, "a Release id (releases) or an API token id (tokens)"),
    "digest": (DIGEST, "sha256:<64 hex> of the blob's bytes"),
    "command": ({"type": "string", "enum": list(COMMANDS)}, "what to do with the rollout"),
    "token_id": ({"type": "string"}, "a join token's id"),
    "node_id": ({"type": "string"}, "a node id (16 hex)"),
}  # fmt: skip
"""Every path parameter: its schema and meaning."""


def _int(lo: int, hi: int, default: int | None = None) -> Schema:
    out: dict[str, Any] = {"type": "integer", "minimum": lo, "maximum": hi}
    return out if default is None else {**out, "default": default}


_HAVE = Param(
    "have",
    {"type": "string", "pattern": r"^([^:,]+:[0-9]{1,16})(,[^:,]+:[0-9]{1,16})*$"},
    "<group>:<sequence>,… the node holds (absent: nothing); groups must be in its scope",
)
_NODE_403 = "node_revoked, group_out_of_scope (details.groups): the node may not ask this"
_BAD_BODY = "bad_request: a body that is not one JSON object (details.problem)"

OPERATIONS: tuple[Operation, ...] = (
    # -- the app wing: public ------------------------------------------------------
    Operation("get", "/healthz", "The process is up", "public", 200, "Health"),
    Operation("get", "/readyz", "The store answers and every service is ready", "public",
              200, "Ready", errors={503: "not ready: the same body with ready=false"}),
    Operation("get", "/metrics", "Prometheus metrics (konorkestra_center_*)", "public", 200,
              None, media="text/plain"),
    Operation("get", "/v1/openapi.json", "This document", "public", 200, "JsonObject"),
    Operation("get", "/v1/trust/root", "The signed trust root agents pin, verbatim", "public",
              200, "JsonObject"),
    # -- ingest ---------------------------------------------------------------------
    Operation("get", "/v1/commits", "Ingested commits, newest first", "viewer", 200, "Commits",
              query=(Param("limit", _int(1, 1000, 50), "at most this many"),
                     Param("before", _int(0, 2**62, 0), "only commits with a smaller seq"))),
    Operation("get", "/v1/commits/{sha}", "One commit with diagnostics and its Releases",
              "viewer", 200, "CommitDetail",
              errors={400: "bad_request: not 4 to 64 hex digits",
                      404: "not_found: no such commit, or the prefix is ambiguous"}),
    Operation("post", "/v1/hooks/git", "Look at the Git repository now", "operator", 202,
              "HookAccepted", body="GitHook", body_required=False,
              query=(Param("wait", _int(0, 60, 0), "hold the answer until that pass is done"),),
              errors={503: "unavailable: this Center has no Git ingest"}),
    # -- releases ---------------------------------------------------------------------
    Operation("get", "/v1/groups", "Groups as of the latest accepted commit", "viewer", 200,
              "Groups"),
    Operation("get", "/v1/groups/{name}", "One Group, its Releases and convergence", "viewer",
              200, "GroupDetail", errors={404: "not_found: no such group"},
              query=(Param("limit", _int(1, 1000, 50), "at most this many Releases"),)),
    Operation("get", "/v1/releases", "Releases, newest first", "viewer", 200, "Releases",
              query=(Param("group", {"type": "string"}, "only this Group's"),
                     Param("limit", _int(1, 1000, 100), "at most this many"))),
    Operation("post", "/v1/releases", "Create a Release by hand (e.g. a rollback)", "operator",
              201, "Release", body="CreateRelease",
              errors={404: "not_found: a name@version no accepted commit holds",
                      409: "conflict: it would repeat the latest Release exactly",
                      422: "invalid: a field is missing, unknown or of the wrong type",
                      503: "unavailable: this Center has no release signing key"}),
    Operation("get", "/v1/releases/{id}", "One Release, its bundle and convergence", "viewer",
              200, "ReleaseDetail", errors={404: "not_found: no such Release"}),
    Operation("get", "/v1/releases/{id}/bundle", "The Sigstore bundle bytes exactly as signed",
              "viewer", 200, "SigstoreBundle", errors={404: "not_found: no such Release"}),
    Operation("get", "/v1/blobs/{digest}", "Content-addressed blob bytes (immutable)",
              "viewer", 200, None, media="application/octet-stream",
              errors={400: "bad_request: not sha256:<64 hex>", 404: "not_found: no such blob"}),
    # -- operators --------------------------------------------------------------------
    Operation("get", "/v1/audit", "Audit events in chain order, one page", "viewer", 200,
              "AuditPage",
              query=(Param("after", _int(0, 2**62, 0), "only events with a larger seq"),
                     Param("limit", _int(1, 5000, 500), "at most this many"),
                     Param("order", {"type": "string", "enum": ["asc", "desc"],
                                     "default": "asc"}, "asc: oldest first, pages forward with"
                           " after; desc: newest first, pages backward with before"),
                     Param("before", _int(1, 2**62), "only events with a smaller seq")),
              description="next is the cursor of the following page in the same order (after"
              " for asc, before for desc); null at the end.",
              errors={400: "invalid: a bad query parameter (details.parameter names it)"}),
    Operation("get", "/v1/audit/verify", "Recompute the audit hash chain", "viewer", 200,
              "ChainResult"),
    Operation("get", "/v1/audit/checkpoint", "The audit head (or ?seq) signed by the timestamp"
              " role", "viewer", 200, "SigstoreBundle",
              query=(Param("seq", _int(0, 2**62), "this event instead of the head"),),
              errors={404: "not_found: seq is past the audit log's head",
                      503: "unavailable: this Center holds no timestamp key"}),
    Operation("get", "/v1/tokens", "API tokens (never their secrets)", "admin", 200,
              "ApiTokens"),
    Operation("post", "/v1/tokens", "Issue an API token (the secret is shown once)", "admin",
              201, "NewApiToken", body="CreateApiToken",
              errors={422: "invalid: name not 1-100 characters, or an unknown role"}),
    Operation("delete", "/v1/tokens/{id}", "Revoke an API token", "admin", 200, "Revoked",
              errors={404: "not_found: no live token with this id"}),
    # -- nodes and enrollment ---------------------------------------------------------
    Operation("get", "/v1/enroll/ca", "The CA certificate (PEM) agents pin", "public", 200,
              None, media="application/x-pem-file"),
    Operation("post", "/v1/enroll", "Enroll a node: a join token and a CSR in, a certificate"
              " out", "join-token", 200, "Enrolled", body="Enroll",
              errors={400: "bad_request, tls_required, csr_rejected: the request is unusable",
                      401: "join_refused: the join token is unknown, used, expired or revoked",
                      409: "conflict: a node of that name exists",
                      429: "rate_limited: too many attempts from this address (Retry-After)"}),
    Operation("post", "/v1/nodes/self/renew", "Renew the calling node's certificate", "node",
              200, "Renewed", body="Renew",
              errors={400: "csr_rejected: the CSR breaks policy or reuses the key"}),
    Operation("post", "/v1/join-tokens", "Create a join token (or ?count of them)", "operator",
              201, "JoinTokenCreated", body="CreateJoinToken",
              errors={400: "bad_request: a field of the wrong type (details.field)"}),
    Operation("get", "/v1/join-tokens", "Join tokens (never their secrets)", "viewer", 200,
              "JoinTokens"),
    Operation("delete", "/v1/join-tokens/{token_id}", "Revoke an unused join token",
              "operator", 200, "JoinTokenRevoked",
              errors={404: "not_found: no unused, unrevoked join token with this id"}),
    Operation("get", "/v1/nodes", "Enrolled nodes", "viewer", 200, "Nodes"),
    Operation("get", "/v1/nodes/{node_id}", "One node and its state in each Group", "viewer",
              200, "NodeDetail", errors={404: "not_found: no such node"}),
    Operation("post", "/v1/nodes/{node_id}/revoke", "Revoke a node (idempotent)", "operator",
              200, "Node", errors={404: "not_found: no such node"}),
    Operation("get", "/v1/tls/self-test", "Who the TLS layer says the caller is", "public",
              200, "SelfTest"),
    # -- agents (mTLS) ----------------------------------------------------------------
    Operation("get", "/v1/agent/desired", "Desired state, long-polled", "node", 200, "Desired",
              query=(_HAVE, Param("wait", {"type": "number", "minimum": 0, "default": 0},
                                  "hold up to this many seconds (capped at 55)")),
              errors={403: _NODE_403}),
    Operation("get", "/v1/agent/stream", "Desired state as a stream, one answer per line",
              "node", 200, "StreamLine", media="application/x-ndjson", query=(_HAVE,),
              errors={403: _NODE_403}),
    Operation("get", "/v1/agent/blobs/{digest}", "A blob of a Release in the node's scope",
              "node", 200, None, media="application/octet-stream",
              errors={400: "bad_request: not sha256:<64 hex>", 404: "not_found: no such blob",
                      403: "node_revoked, blob_out_of_scope: no Release of the node's"
                      " Groups references the blob"}),
    Operation("post", "/v1/agent/reports", "Store what the node saw (whole or not at all)",
              "node", 200, "ReportStored", body="Report",
              errors={400: "bad_request, release_mismatch: a malformed report, or one crediting"
                      " a Group with another's Release", 403: _NODE_403}),
    # -- rollouts -----------------------------------------------------------------------
    Operation("get", "/v1/rollouts", "The status of each Group's latest rollout", "viewer",
              200, "Rollouts"),
    Operation("get", "/v1/rollouts/{group}", "One Group's rollout and its earlier ones",
              "viewer", 200, "RolloutDetail", errors={404: "not_found: the Group has no rollout"}),
    Operation("post", "/v1/rollouts/{group}/{command}", "Steer a Group's rollout", "operator",
              200, "RolloutDetail", body="RolloutCommand", body_required=False,
              errors={202: "queued: another Center drives the rollouts; it applies the command",
                      404: "not_found: an unknown command, or the Group has no rollout",
                      409: "rollout_conflict: the command does not apply in the rollout's phase"
                      " (details.phase, details.release), or the rollout moved before the"
                      " runner applied it (details.command, details.queued)",
                      422: 'invalid: the body is not {"reason": <at most 1000 characters>}',
                      503: "unavailable: this Center does not run rollouts"}),
)  # fmt: skip
"""Every documented operation, in the order the app matches them."""

SUCCESS_BODIES: dict[tuple[str, str, int], str] = {
    ("post", "/v1/rollouts/{group}/{command}", 202): "RolloutQueued",
    ("get", "/readyz", 503): "Ready",
}
"""Statuses other than the success one whose body is not the Error shape."""


def error_statuses(op: Operation) -> dict[int, str]:
    """Every status besides the success one that ``op`` can answer, with its description:
    ``op.errors`` and those of its kind (auth, query parameters, a body, any route: 500)."""
    out: dict[int, str] = {}
    if op.auth in ROLES:
        out[401] = "unauthenticated: no, a malformed, unknown or revoked token"
        out[403] = f"forbidden: the token's role is below {op.auth}"
    if op.auth == "node":
        out[401] = "unauthenticated: no verified node client certificate"
        out[403] = "node_revoked: the node was revoked"
    if op.query:
        out[400] = "bad_request: a query parameter is malformed or out of range"
    if op.body is not None:
        out[400] = _BAD_BODY
        out[413] = "too_large: the body is over 1 MiB (details.limit)"
    out.update(op.errors)
    out[500] = "internal: see the Center's log (never with details)"
    return dict(sorted(out.items()))
