"""The guard of every route a node calls: a verified certificate of an allowed node.

Usage (in an agent route; errors propagate as ApiError, 401/403 JSON)::

    node = await require_node(request)        # the caller's NodeRecord

Invariants:

- The certificate is judged by :func:`konorkestra.center.pki.identity.node_identity`
  (current, ``CA:false``, clientAuth, one SPIFFE URI of our trust domain; parsed
  once per certificate): 401 without such a certificate, 403 for an unknown or
  revoked node — what :func:`~konorkestra.center.pki.identity.authenticate_node`
  answers, without its second look-up of the node through a runtime protocol
  check (``isinstance`` on a ``Protocol``: 14 % of the event loop in a 1,000-agent
  fan-out).
- The node must exist and not be revoked, checked per request: from memory when
  cached (:mod:`konorkestra.center.nodes.cache`; a revocation drops the cached
  entry at once), else from the store in a worker thread.
- Without an :class:`~konorkestra.center.nodes.enrollment.EnrollmentService` as
  the identity middleware's authorizer every node is refused (fail closed).
"""

from __future__ import annotations

from starlette.requests import Request

from konorkestra.center.app.web import db
from konorkestra.center.nodes.cache import Miss
from konorkestra.center.nodes.enrollment import EnrollmentService
from konorkestra.center.nodes.records import NodeRecord
from konorkestra.center.pki.identity import NodeAuthError, identity_authorizer, node_identity


async def require_node(request: Request) -> NodeRecord:
    """The calling node's record; raises :class:`NodeAuthError` (401/403) otherwise."""
    node_id = node_identity(request)
    if node_id is None:
        raise NodeAuthError(
            401, "client_certificate_required", "this route needs a valid node client certificate"
        )
    record = await authorized(node_service(request), node_id)
    if record is None:
        raise NodeAuthError(403, "node_revoked", f"node {node_id} is revoked or unknown")
    request.state.node_id = node_id
    return record


def node_service(request: Request) -> EnrollmentService:
    """The service that authorizes nodes; a 403 :class:`NodeAuthError` without one."""
    service = identity_authorizer(request)
    if not isinstance(service, EnrollmentService):
        raise NodeAuthError(403, "node_revoked", "node authorization is not configured")
    return service


async def authorized(service: EnrollmentService, node_id: str) -> NodeRecord | None:
    """The node's record if it exists and is not revoked: from memory when cached
    (revocations drop the entry), else from the store in a worker thread."""
    found = service.authorized_now(node_id)
    return await db(service.authorized, node_id) if isinstance(found, Miss) else found
