"""Node enrollment: join tokens, certificate issue and renewal, node revocation.

Usage::

    hasher = JoinTokenHasher.load_or_create(data / "enroll.key")
    svc = EnrollmentService(engine, ca=ca, hasher=hasher,
                            join_tokens=schema.join_tokens, nodes=schema.nodes, audit=audit)
    token, record = svc.create_join_token(JoinTokenSpec(groups=("checkout",)), created_by="alice")
    enrolled = svc.enroll(str(token), csr_pem, requested_name="web-1")
    svc.revoke_node(enrolled.node.id, by="alice")
    assert not svc.node_allowed(enrolled.node.id)

Invariants:

- A join token is ``<id>.<secret>``: id 8 chars ``[a-z0-9]``, secret 32 URL-safe
  chars (192 bits). The Center stores only HMAC-SHA256(server key, token); the key
  lives in the data directory (0600), never in the database.
- A token is consumed by one conditional ``UPDATE ... WHERE used_at IS NULL AND
  revoked_at IS NULL AND expires_at > now`` whose rowcount decides: of any number
  of concurrent joins, exactly one wins. Consuming the token, inserting the node
  and the audit record commit together or not at all.
- Unknown, malformed, wrong-secret, expired, revoked, reused and wrongly-bound
  tokens all fail with the same :data:`JOIN_TOKEN_REFUSED` message; secrets are compared
  with :func:`hmac.compare_digest`, and an unknown id still costs one HMAC.
- The CSR is checked before the token is touched, so a bad CSR never burns a token.
- A node is allowed iff its row exists and ``revoked_at`` is NULL. Authorization
  reads go through a :class:`~konorkestra.center.nodes.cache.NodeCache`; every write
  of this service to a node row drops the node's entry after commit, so a
  revocation is effective on the next request. ``get_node`` and ``list_nodes``
  (the operator views, with ``last_seen``) always read the store.
- Several Center replicas: after that drop, each of ``changed`` is called with
  the node id (the server broadcasts it); a replica told that another one wrote
  a node row calls :meth:`EnrollmentService.forget`, which drops the entry the
  same way, so a revocation on one replica is in force on every replica as soon
  as the broadcast arrives.
- Renewal needs an allowed node and a fresh key (a CSR for the key in use is refused).
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from cryptography import x509
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.nodes.cache import Miss, NodeCache
from konorkestra.center.nodes.jointokens import (
    JOIN_TOKEN_REFUSED,
    InvalidJoinTokenSpec,
    JoinToken,
    JoinTokenHasher,
    JoinTokenRecord,
    JoinTokenSpec,
    RateLimiter,
    join_token_record,
)
from konorkestra.center.nodes.records import (
    NODE_NAME,
    Enrolled,
    EnrollmentError,
    EnrollmentRefused,
    NodeNotAllowed,
    NodeRecord,
    node_record,
)
from konorkestra.center.pki.ca import DEFAULT_NODE_LIFETIME, CertificateAuthority, IssuedCertificate
from konorkestra.center.pki.certs import NODE_ID_PATTERN, check_csr, spki_pin, spki_pin_of_key
from konorkestra.center.store import schema
from konorkestra.center.store.audit import Details, Event
from konorkestra.center.store.audit import append_many as audit_append_many
from konorkestra.center.store.engine import reader
from konorkestra.model.types import NodeId

AuditFn = Callable[[Connection, Sequence[Event]], object]
"""Appends ``(actor, action, details)`` events in the caller's transaction, in order."""

MAX_TOKENS_AT_ONCE = 10_000
"""The most join tokens one request makes (one transaction)."""


# --- the service ----------------------------------------------------------------------


class EnrollmentService:
    """Join tokens and nodes over the store's ``join_tokens`` and ``nodes`` tables."""

    def __init__(
        self,
        engine: Engine,
        *,
        ca: CertificateAuthority,
        hasher: JoinTokenHasher,
        join_tokens: sa.Table = schema.join_tokens,
        nodes: sa.Table = schema.nodes,
        audit: AuditFn | None = audit_append_many,
        cert_lifetime: dt.timedelta = DEFAULT_NODE_LIFETIME,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.engine, self.ca, self.hasher = engine, ca, hasher
        self.join_tokens, self.nodes = join_tokens, nodes
        self._audit = audit
        self.cert_lifetime = cert_lifetime
        self.clock = clock
        self.cache: NodeCache[NodeRecord] = NodeCache()
        self.changed: list[Callable[[str], None]] = []
        """Called with a node id after this service wrote that node's row (and dropped it)."""

    def _dropped(self, node_id: str) -> None:
        self.cache.drop(node_id)
        for listener in self.changed:
            listener(node_id)

    def forget(self, node_id: str) -> None:
        """Another replica wrote ``node_id``'s row: the next request reads the store again."""
        self.cache.drop(node_id)

    def _record(self, conn: Connection, actor: str, action: str, details: Details) -> None:
        if self._audit is not None:
            self._audit(conn, [(actor, action, details)])

    def _now(self) -> dt.datetime:
        return self.clock().replace(microsecond=0)

    # tokens

    def create_join_token(
        self, spec: JoinTokenSpec, *, created_by: str
    ) -> tuple[JoinToken, JoinTokenRecord]:
        [made] = self.create_join_tokens(spec, 1, created_by=created_by)
        return made

    def create_join_tokens(
        self, spec: JoinTokenSpec, count: int, *, created_by: str
    ) -> list[tuple[JoinToken, JoinTokenRecord]]:
        """``count`` tokens of one spec in one transaction (one insert, one audit append):
        how a fleet of new nodes gets its tokens. Each is single use, as one made alone."""
        spec.validate()
        if not 1 <= count <= MAX_TOKENS_AT_ONCE:
            raise InvalidJoinTokenSpec(f"count must be from 1 to {MAX_TOKENS_AT_ONCE}")
        if count > 1 and spec.node_name:
            raise InvalidJoinTokenSpec("a token bound to a node name cannot be made in bulk")
        now = self._now()
        tokens = [JoinToken.generate() for _ in range(count)]
        common = {
            "groups": list(spec.groups),
            "labels": dict(spec.labels),
            "node_name": spec.node_name,
            "expires_at": now + spec.ttl,
            "created_by": created_by,
            "created_at": now,
        }
        rows = [{"id": t.id, "secret_hmac": self.hasher.digest(t), **common} for t in tokens]
        t = self.join_tokens.c
        with self.engine.begin() as conn:
            conn.execute(sa.insert(self.join_tokens), rows)
            ttl = int(spec.ttl.total_seconds())
            if self._audit is not None:  # one chain read and one insert for all of them
                self._audit(conn, [
                    (created_by, "join_token.created",
                     {"token_id": x.id, "groups": list(spec.groups), "ttl": ttl})
                    for x in tokens
                ])  # fmt: skip
            found = {
                r.id: join_token_record(r)
                for r in conn.execute(
                    sa.select(self.join_tokens).where(t.id.in_([x.id for x in tokens]))
                )
            }
        return [(token, found[token.id]) for token in tokens]

    def list_join_tokens(self) -> list[JoinTokenRecord]:
        with reader(self.engine).connect() as conn:  # read-only: no write lock
            rows = conn.execute(
                sa.select(self.join_tokens).order_by(self.join_tokens.c.created_at)
            ).all()
        return [join_token_record(r) for r in rows]

    def revoke_join_token(self, token_id: str, *, by: str) -> bool:
        """Revoke an unused token; ``False`` if no such unused, unrevoked token exists."""
        t = self.join_tokens.c
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(self.join_tokens)
                .where(t.id == token_id, t.used_at.is_(None), t.revoked_at.is_(None))
                .values(revoked_at=self._now())
            )
            if result.rowcount == 1:
                self._record(conn, by, "join_token.revoked", {"token_id": token_id})
        return result.rowcount == 1

    # enrollment

    def enroll(
        self,
        token_text: str,
        csr_pem: bytes,
        *,
        requested_name: str | None = None,
        source: str = "",
    ) -> Enrolled:
        """Consume the token (exactly once) and issue the new node's certificate.

        A refusal is audited (``node.enroll_refused``) in its own transaction.
        """
        check_csr(csr_pem)
        if requested_name is not None and not NODE_NAME.match(requested_name):
            raise InvalidJoinTokenSpec(f"invalid node name {requested_name!r}")
        try:
            return self._enroll(token_text, csr_pem, requested_name, source)
        except EnrollmentRefused:
            token_id = token_text.partition(".")[0][:12]
            with self.engine.begin() as conn:
                details = {"token_id": token_id, "source": source}
                self._record(conn, "anonymous", "node.enroll_refused", details)
            raise

    def _enroll(
        self, token_text: str, csr_pem: bytes, requested_name: str | None, source: str
    ) -> Enrolled:
        token = JoinToken.parse(token_text)
        now = self._now()
        node_id = NodeId(secrets.token_hex(8))
        t = self.join_tokens.c
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(self.join_tokens).where(t.id == token.id)).first()
            stored = None if row is None else row._mapping["secret_hmac"]
            if not self.hasher.matches(token, stored) or row is None:
                raise EnrollmentRefused(JOIN_TOKEN_REFUSED)
            record = join_token_record(row)
            bound = record.node_name
            if bound is not None and requested_name not in (None, bound):
                raise EnrollmentRefused(JOIN_TOKEN_REFUSED)
            consumed = conn.execute(
                sa.update(self.join_tokens)
                .where(
                    t.id == token.id,
                    t.secret_hmac == stored,
                    t.used_at.is_(None),
                    t.revoked_at.is_(None),
                    t.expires_at > now,
                )
                .values(used_at=now, used_by=node_id)
            )
            if consumed.rowcount != 1:
                raise EnrollmentRefused(JOIN_TOKEN_REFUSED)
            issued = self.ca.sign_node_csr(csr_pem, node_id, lifetime=self.cert_lifetime, now=now)
            n = self.nodes.c
            conn.execute(
                sa.insert(self.nodes).values(
                    id=node_id,
                    name=bound or requested_name or node_id,
                    groups=list(record.groups),
                    labels=dict(record.labels),
                    cert_serial=format(issued.serial, "x"),
                    cert_not_after=issued.not_after,
                    created_at=now,
                )
            )
            details = {
                "node_id": node_id,
                "token_id": token.id,
                "serial": format(issued.serial, "x"),
            }
            self._record(conn, f"node:{node_id}", "node.enrolled", details)
            node_row = conn.execute(sa.select(self.nodes).where(n.id == node_id)).one()
        self._dropped(node_id)
        return Enrolled(node_record(node_row), issued)

    def renew(
        self, node_id: NodeId, csr_pem: bytes, *, presented_key_pin: str
    ) -> IssuedCertificate:
        """A new certificate for an allowed node, for a key other than the one presented."""
        key = check_csr(csr_pem)
        if hmac.compare_digest(spki_pin_of_key(key), presented_key_pin):
            raise EnrollmentError("renewal needs a fresh key; the CSR reuses the current one")
        n = self.nodes.c
        now = self._now()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(self.nodes).where(n.id == node_id)).first()
            if row is None or row._mapping["revoked_at"] is not None:
                raise NodeNotAllowed(f"node {node_id} is revoked or unknown")
            issued = self.ca.sign_node_csr(csr_pem, node_id, lifetime=self.cert_lifetime, now=now)
            conn.execute(
                sa.update(self.nodes)
                .where(n.id == node_id, n.revoked_at.is_(None))
                .values(
                    cert_serial=format(issued.serial, "x"),
                    cert_not_after=issued.not_after,
                )
            )
            details = {"node_id": node_id, "serial": format(issued.serial, "x")}
            self._record(conn, f"node:{node_id}", "node.renewed", details)
        self._dropped(node_id)
        return issued

    # nodes

    def node_allowed(self, node_id: NodeId) -> bool:
        """True iff the node exists and is not revoked (see the module invariants)."""
        return self.authorized(node_id) is not None

    def node_allowed_now(self, node_id: NodeId) -> bool | None:
        """:meth:`node_allowed` from memory; ``None`` when only the store can tell."""
        found = self.authorized_now(node_id)
        return None if isinstance(found, Miss) else found is not None

    def authorized_now(self, node_id: str) -> NodeRecord | Miss | None:
        """The record of an allowed node, ``None`` if not allowed, or ``MISS`` (no I/O)."""
        found = self.cache.get(node_id)
        if isinstance(found, Miss) or found is None:
            return found
        return None if found.revoked_at is not None else found

    def authorized(self, node_id: str) -> NodeRecord | None:
        """The record of an allowed node, or ``None`` (unknown or revoked)."""
        found = self.authorized_now(node_id)
        if isinstance(found, NodeRecord) or found is None:
            return found
        if not NODE_ID_PATTERN.match(node_id):
            return None
        token = self.cache.begin()
        record = self.get_node(node_id)
        self.cache.fill(token, node_id, record)
        return None if record is None or record.revoked_at is not None else record

    def list_nodes(self) -> list[NodeRecord]:
        return read_nodes(self.engine, self.nodes)

    def get_node(self, node_id: str) -> NodeRecord | None:
        return read_node(self.engine, node_id, self.nodes)

    def revoke_node(self, node_id: str, *, by: str, reason: str | None = None) -> bool:
        """Revoke a node now; ``False`` if it does not exist or is already revoked.

        ``reason`` (the dashboard's form asks for one) joins the audit details when given."""
        n = self.nodes.c
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(self.nodes)
                .where(n.id == node_id, n.revoked_at.is_(None))
                .values(revoked_at=self._now())
            )
            if result.rowcount == 1:
                details = {"node_id": node_id, **({"reason": reason} if reason else {})}
                self._record(conn, by, "node.revoked", details)
        self._dropped(node_id)
        return result.rowcount == 1


def read_nodes(engine: Engine, nodes: sa.Table = schema.nodes) -> list[NodeRecord]:
    """Every node, oldest enrollment first (the operator views; always the store)."""
    with reader(engine).connect() as conn:  # read-only: no write lock
        rows = conn.execute(sa.select(nodes).order_by(nodes.c.created_at)).all()
    return [node_record(r) for r in rows]


def read_node(engine: Engine, node_id: str, nodes: sa.Table = schema.nodes) -> NodeRecord | None:
    """One node as the store holds it, or ``None``."""
    with reader(engine).connect() as conn:  # read-only: no write lock
        row = conn.execute(sa.select(nodes).where(nodes.c.id == node_id)).first()
    return None if row is None else node_record(row)


@dataclass
class EnrollmentRoutes:
    """What the node routes (:mod:`konorkestra.center.nodes.routes`) need beyond the
    :class:`~konorkestra.center.app.context.CenterContext`: the service, the anchor
    agents pin, the per-source join limit, and whether joins need TLS."""

    service: EnrollmentService
    anchor_pem: bytes
    limiter: RateLimiter = field(default_factory=RateLimiter)
    require_tls: bool = True

    @property
    def pin(self) -> str:
        return spki_pin(x509.load_pem_x509_certificate(self.anchor_pem))
