"""``GET /v1/audit/checkpoint[?seq=N]``: the audit log's head, signed by the timestamp role.

Example::

    konorctl audit export -o audit.jsonl      # ends with this route's answer

The shell around :mod:`konorkestra.trust.checkpoint`: read the head row and row
``seq`` (default: the head) in one read transaction, sign with the Center's
``timestamp`` keys (ADR 0011), answer the Sigstore bundle as JSON.

Invariants:

* What is signed was read from the store in one transaction: ``hash`` is row
  ``seq``'s stored hash and ``head`` the newest row at that moment (an empty log
  is seq 0 with the genesis hash). A ``seq`` past the head is 404, never signed.
* The Center's identity names its repository without credentials (userinfo in a
  URL is dropped) and the digest of the trust root it serves.
* A Center without timestamp keys (an app built without the agent API) answers
  503 ``unavailable``: it has nothing to sign with.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response

from konorkestra.center.app.context import CenterContext
from konorkestra.center.app.errors import ApiError, not_found
from konorkestra.center.app.web import ctx_of, db, ok, query_int
from konorkestra.center.operators.apitokens import Role
from konorkestra.center.operators.auth import require
from konorkestra.center.store import schema
from konorkestra.center.store.engine import now, reader
from konorkestra.model.canonical import digest_of
from konorkestra.trust.checkpoint import GENESIS, AuditCheckpoint, CenterIdentity, sign_checkpoint

HeadAndRow = tuple[int, str, int, str] | None


def public_repo(repo: str) -> str:
    """``repo`` without the userinfo of a URL (``https://user:pw@host/x`` -> ``https://host/x``)."""
    parts = urlsplit(repo)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return repo


def read_head_and_row(engine: Engine, seq: int | None) -> HeadAndRow:
    """``(head_seq, head_hash, seq, hash)`` in one read; ``None`` if ``seq`` is past the head."""
    t = schema.audit
    with reader(engine).connect() as conn, conn.begin():
        head = conn.execute(sa.select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1)).first()
        head_seq, head_hash = (0, GENESIS) if head is None else (int(head.seq), str(head.hash))
        if seq is None or seq == head_seq:
            return head_seq, head_hash, head_seq, head_hash
        if seq > head_seq:
            return None
        if seq == 0:
            return head_seq, head_hash, 0, GENESIS
        row = conn.execute(sa.select(t.c.hash).where(t.c.seq == seq)).first()
        return None if row is None else (head_seq, head_hash, seq, str(row.hash))


def signed_checkpoint(ctx: CenterContext, seq: int | None) -> bytes | None:
    """The checkpoint of event ``seq`` (default: the head) signed now, as bundle bytes;
    ``None`` if ``seq`` is past the head. Raises 503 without timestamp keys. Blocking
    (a store read): the route and the dashboard's export run it off the event loop."""
    signers = ctx.agent_api.timestamp_signers if ctx.agent_api is not None else ()
    if not signers:
        raise ApiError(503, "this Center holds no timestamp key to sign checkpoints with")
    found = read_head_and_row(ctx.engine, seq)
    if found is None:
        return None
    head_seq, head_hash, at_seq, at_hash = found
    identity = CenterIdentity(public_repo(ctx.repo), ctx.branch, digest_of(ctx.trust_root))
    checkpoint = AuditCheckpoint.create(
        center=identity,
        seq=at_seq,
        hash=at_hash,
        head_seq=head_seq,
        head_hash=head_hash,
        now=now(),
    )
    return sign_checkpoint(checkpoint, signers)


async def checkpoint_route(request: Request) -> Response:
    await require(request, Role.VIEWER)
    seq = None
    if "seq" in request.query_params:
        seq = query_int(request, "seq", 0, lo=0, hi=2**62)
    signed = await db(signed_checkpoint, ctx_of(request), seq)
    if signed is None:
        raise not_found(f"no audit event {seq}", seq=seq)
    return ok(json.loads(signed))
