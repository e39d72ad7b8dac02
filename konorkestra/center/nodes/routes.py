"""HTTP routes for enrollment, renewal, join tokens and nodes.

Usage::

    ctx = CenterContext(engine=engine, trust_root=root,
                        enrollment=EnrollmentRoutes(service=svc, anchor_pem=creds.anchor_pem))
    create_app(ctx)        # the factory adds ``routes(ctx)``; none without ``ctx.enrollment``

Invariants:

- Public: only ``GET /v1/enroll/ca`` (the anchor PEM agents pin) and
  ``POST /v1/enroll`` (only over TLS, rate limited per source address; the join
  token is the credential and a refusal says only
  :data:`~konorkestra.center.nodes.jointokens.JOIN_TOKEN_REFUSED`).
- ``POST /v1/nodes/self/renew`` and every agent route need a verified client
  certificate of a node that exists and is not revoked, checked per request
  (from memory when cached; a revocation drops the cached entry at once).
  (:func:`konorkestra.center.nodes.guard.require_node`). Renewal touches no Group.
- Operator routes call :func:`konorkestra.center.operators.auth.require` first: reading
  needs ``viewer``, creating and revoking need ``operator``. Join tokens live at
  ``/v1/join-tokens`` (``/v1/tokens`` is the operator API tokens' resource).
- The trust root handed to a joining node is ``CenterContext.trust_root``, verbatim.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.errors import ApiError, bad_request, not_found
from konorkestra.center.app.web import ctx_of, db, json_body, ok
from konorkestra.center.nodes.guard import require_node
from konorkestra.center.nodes.jointokens import (
    InvalidJoinTokenSpec,
    JoinTokenRecord,
    JoinTokenSpec,
    RateLimited,
)
from konorkestra.center.nodes.records import (
    EnrollmentError,
    EnrollmentRefused,
    NodeNotAllowed,
    NodeRecord,
)
from konorkestra.center.nodes.state import node_state
from konorkestra.center.operators.apitokens import Role
from konorkestra.center.operators.auth import require
from konorkestra.center.pki.certs import CSRRejected, spki_pin_of_key
from konorkestra.center.pki.identity import (
    NodeAuthError,
    peer_certificate,
)
from konorkestra.model.types import GroupName, JsonObject, NodeId


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def node_json(node: NodeRecord) -> JsonObject:
    """A node as ``/v1/nodes`` shows it."""
    return {
        "id": node.id,
        "name": node.name,
        "groups": list(node.groups),
        "labels": dict(node.labels),
        "status": "revoked" if node.revoked_at else "active",
        "cert_serial": node.cert_serial,
        "cert_not_after": _iso(node.cert_not_after),
        "revoked_at": _iso(node.revoked_at),
        "last_seen": _iso(node.last_seen),
        "created_at": _iso(node.created_at),
    }


def join_token_json(token: JoinTokenRecord, now: dt.datetime) -> JsonObject:
    """A join token as ``/v1/join-tokens`` shows it (never its secret)."""
    return {
        "id": token.id,
        "groups": list(token.groups),
        "labels": dict(token.labels),
        "node_name": token.node_name,
        "status": token.status(now),
        "expires_at": _iso(token.expires_at),
        "used_at": _iso(token.used_at),
        "used_by": token.used_by,
        "revoked_at": _iso(token.revoked_at),
        "created_by": token.created_by,
        "created_at": _iso(token.created_at),
    }


def _string(data: Mapping[str, object], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise bad_request(f"field {name!r} must be a non-empty string", field=name)
    return value


def _join_token_spec(data: Mapping[str, object]) -> JoinTokenSpec:
    groups = data.get("groups")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise bad_request("field 'groups' must be a list of group names", field="groups")
    labels = data.get("labels", {})
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise bad_request("field 'labels' must be an object of strings", field="labels")
    ttl = data.get("ttl_seconds", 900)
    if not isinstance(ttl, int) or isinstance(ttl, bool):
        raise bad_request("field 'ttl_seconds' must be an integer", field="ttl_seconds")
    try:
        lifetime = dt.timedelta(seconds=ttl)
    except OverflowError:
        raise bad_request("field 'ttl_seconds' is out of range", field="ttl_seconds") from None
    return JoinTokenSpec(
        groups=tuple(GroupName(g) for g in groups),
        labels=labels,
        node_name=_string(data, "node_name", required=False),
        ttl=lifetime,
    )


def routes(ctx: CenterContext) -> list[BaseRoute]:
    """All enrollment, join-token and node routes, bound to ``ctx.enrollment`` (none without)."""
    enrollment = ctx.enrollment
    if enrollment is None:
        return []
    svc = enrollment.service

    async def get_ca(request: Request) -> Response:
        return Response(enrollment.anchor_pem, media_type="application/x-pem-file")

    async def post_enroll(request: Request) -> Response:
        if enrollment.require_tls and request.url.scheme != "https":
            raise ApiError(400, "enrollment is only served over TLS", code="tls_required")
        source = request.client.host if request.client else "unknown"
        try:
            enrollment.limiter.check(source)
        except RateLimited as exc:
            retry = {"Retry-After": str(int(exc.retry_after) + 1)}
            raise ApiError(429, str(exc), code="rate_limited", headers=retry) from None
        trust_root = ctx_of(request).trust_root
        data = await json_body(request)
        token, csr = _string(data, "token"), _string(data, "csr")
        name = _string(data, "name", required=False)
        assert token is not None and csr is not None
        try:
            enrolled = await db(svc.enroll, token, csr.encode(), requested_name=name, source=source)
        except EnrollmentRefused as exc:
            raise ApiError(401, str(exc), code="join_refused") from None
        except CSRRejected as exc:
            raise ApiError(400, str(exc), code="csr_rejected") from None
        except InvalidJoinTokenSpec as exc:
            raise bad_request(str(exc)) from None
        except sa.exc.IntegrityError:
            raise ApiError(409, f"a node named {name!r} already exists", code="conflict") from None
        node = enrolled.node
        return ok(
            {
                "node_id": node.id,
                "name": node.name,
                "certificate": enrolled.certificate.cert_pem.decode(),
                "not_after": _iso(enrolled.certificate.not_after),
                "ca": enrollment.anchor_pem.decode(),
                "trust_root": trust_root.decode("utf-8"),
                "scope": {"groups": list(node.groups), "labels": dict(node.labels)},
            }
        )

    async def post_renew(request: Request) -> Response:
        node = await require_node(request)
        cert = peer_certificate(request)
        assert cert is not None  # require_node verified it
        csr = _string(await json_body(request), "csr")
        assert csr is not None
        presented = spki_pin_of_key(cert.public_key())
        try:
            issued = await db(svc.renew, node.id, csr.encode(), presented_key_pin=presented)
        except NodeNotAllowed as exc:
            raise NodeAuthError(403, "node_revoked", str(exc)) from None
        except EnrollmentError as exc:  # CSR policy, key reuse
            raise ApiError(400, str(exc), code="csr_rejected") from None
        except CSRRejected as exc:
            raise ApiError(400, str(exc), code="csr_rejected") from None
        return ok({"certificate": issued.cert_pem.decode(), "not_after": _iso(issued.not_after)})

    async def post_join_tokens(request: Request) -> Response:
        who = await require(request, Role.OPERATOR)
        data = await json_body(request)
        spec = _join_token_spec(data)
        count = data.get("count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
            raise bad_request("field 'count' must be an integer", field="count")
        try:
            many = 1 if count is None else count
            made = await db(svc.create_join_tokens, spec, many, created_by=who.actor)
        except InvalidJoinTokenSpec as exc:
            raise bad_request(str(exc)) from None
        now = svc.clock()
        tokens = [
            {**join_token_json(record, now), "token": str(token), "ca_pin": enrollment.pin}
            for token, record in made
        ]
        if count is None:  # one token, the original answer
            return ok(tokens[0], status=201)
        return ok({"tokens": tokens, "count": len(tokens), "ca_pin": enrollment.pin}, status=201)

    async def get_join_tokens(request: Request) -> Response:
        await require(request, Role.VIEWER)
        records = await db(svc.list_join_tokens)
        now = svc.clock()
        return ok({"tokens": [join_token_json(r, now) for r in records]})

    async def delete_join_token(request: Request) -> Response:
        who = await require(request, Role.OPERATOR)
        token_id = request.path_params["token_id"]
        if not await db(svc.revoke_join_token, token_id, by=who.actor):
            raise not_found(f"no unused, unrevoked join token {token_id!r}")
        return ok({"id": token_id, "status": "revoked"})

    async def get_nodes(request: Request) -> Response:
        await require(request, Role.VIEWER)
        return ok({"nodes": [node_json(n) for n in await db(svc.list_nodes)]})

    async def get_node(request: Request) -> Response:
        await require(request, Role.VIEWER)
        node_id = request.path_params["node_id"]
        node = await db(svc.get_node, node_id)
        if node is None:
            raise not_found(f"no node {node_id!r}")
        state = await db(node_state, ctx_of(request).engine, node.id, list(node.groups))
        return ok({**node_json(node), **state})  # + per-group applied release, processes

    async def revoke_node(request: Request) -> Response:
        who = await require(request, Role.OPERATOR)
        node_id = NodeId(request.path_params["node_id"])
        await db(svc.revoke_node, node_id, by=who.actor)  # idempotent
        node = await db(svc.get_node, node_id)
        if node is None:
            raise not_found(f"no node {node_id!r}")
        return ok(node_json(node))

    return [
        Route("/v1/enroll/ca", get_ca, methods=["GET"]),
        Route("/v1/enroll", post_enroll, methods=["POST"]),
        Route("/v1/nodes/self/renew", post_renew, methods=["POST"]),
        Route("/v1/join-tokens", post_join_tokens, methods=["POST"]),
        Route("/v1/join-tokens", get_join_tokens, methods=["GET"]),
        Route("/v1/join-tokens/{token_id}", delete_join_token, methods=["DELETE"]),
        Route("/v1/nodes", get_nodes, methods=["GET"]),
        Route("/v1/nodes/{node_id}", get_node, methods=["GET"]),
        Route("/v1/nodes/{node_id}/revoke", revoke_node, methods=["POST"]),
    ]
