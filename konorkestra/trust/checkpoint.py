"""The audit checkpoint (timestamp role): "event ``seq`` of my audit log has hash ``hash``".

Example::

    >>> import datetime as dt
    >>> from konorkestra.trust.keys import Signer
    >>> from konorkestra.trust.checkpoint import AuditCheckpoint, CenterIdentity, GENESIS
    >>> from konorkestra.trust.checkpoint import sign_checkpoint, read_checkpoint
    >>> now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    >>> cp = AuditCheckpoint.create(
    ...     center=CenterIdentity("git@example.com:ops/config.git", "main", GENESIS),
    ...     seq=0, hash=GENESIS, head_seq=0, head_hash=GENESIS, now=now)
    >>> AuditCheckpoint.from_payload(cp.to_payload()) == cp
    True
    >>> bundle = sign_checkpoint(cp, [Signer.generate()])  # verify_checkpoint(bundle, root)
    >>> read_checkpoint(bundle) == cp
    True

Payload (canonical JSON, in-toto Statement v1, DSSE in a Sigstore bundle like the
freshness statement)::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "audit-log@<seq>", "digest": {"sha256": "<hex of hash>"}}],
     "predicateType": "https://konorkestra.io/audit-checkpoint/v1",
     "predicate": {"center": {"repo": "…", "branch": "main", "trustRoot": "sha256:…"},
                   "issuedAt": "…Z", "seq": 250, "hash": "sha256:…",
                   "head": {"seq": 300, "hash": "sha256:…"}}}

Invariants:

* ``seq``/``hash`` name one event of the chain (the last one an export holds);
  ``head`` is the newest event when the Center signed. ``seq <= head.seq``, and
  ``seq == head.seq`` implies ``hash == head.hash``. An empty log is seq 0 with
  :data:`GENESIS`.
* The subject mirrors ``seq``/``hash`` one to one (a :class:`SubjectMismatch` otherwise).
* Checkpoints are signed by ``timestamp`` role keys (ADR 0011) and judged by
  :func:`verify_checkpoint` with the role's threshold, all-or-nothing like every
  DSSE check here (``konorkestra.trust.dsse``). The trust root's expiry is not
  checked: an auditor verifies history, often after the root was rotated.
* ``center.trustRoot`` is the digest of the Center's trust root when it signed:
  it says which Center, it is not a key; the keys are the auditor's root.json.
* Pure: bytes in, objects or :class:`~konorkestra.trust.errors.TrustError` out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from konorkestra.model.canonical import DIGEST_RE, canonical_bytes
from konorkestra.trust.dsse import (
    INTOTO_PAYLOAD_TYPE,
    decode_bundle,
    encode_bundle,
    sign_envelope,
    verify_threshold,
)
from konorkestra.trust.errors import MalformedBundle, SubjectMismatch, WrongPayloadType
from konorkestra.trust.keys import SigningKey
from konorkestra.trust.root import TrustRoot
from konorkestra.trust.statement import STATEMENT_TYPE, open_statement
from konorkestra.trust.wire import format_time, int_field, obj, parse_time, text_field

CHECKPOINT_PREDICATE_TYPE = "https://konorkestra.io/audit-checkpoint/v1"
GENESIS = "sha256:" + "0" * 64
"""The ``prev_hash`` of the first audit event (the store's ``GENESIS``)."""
MAX_CHECKPOINT_BYTES = 64 * 1024


@dataclass(frozen=True)
class CenterIdentity:
    """Which Center signed: its repository, branch and trust-root digest."""

    repo: str
    branch: str
    trust_root: str

    def to_json(self) -> dict[str, Any]:
        return {"repo": self.repo, "branch": self.branch, "trustRoot": self.trust_root}


@dataclass(frozen=True)
class AuditCheckpoint:
    """The signed content of one audit checkpoint."""

    center: CenterIdentity
    issued_at: dt.datetime
    seq: int
    hash: str
    head_seq: int
    head_hash: str

    @classmethod
    def create(
        cls,
        *,
        center: CenterIdentity,
        seq: int,
        hash: str,
        head_seq: int,
        head_hash: str,
        now: dt.datetime,
    ) -> AuditCheckpoint:
        """A checked checkpoint issued at ``now`` (whole seconds)."""
        issued = now.astimezone(dt.UTC).replace(microsecond=0)
        made = cls(center, issued, seq, hash, head_seq, head_hash)
        return cls.from_payload(made.to_payload())

    def to_json(self) -> dict[str, Any]:
        """The in-toto Statement as a JSON value."""
        return {
            "_type": STATEMENT_TYPE,
            "subject": _subject(self.seq, self.hash),
            "predicateType": CHECKPOINT_PREDICATE_TYPE,
            "predicate": {
                "center": self.center.to_json(),
                "issuedAt": format_time(self.issued_at),
                "seq": self.seq,
                "hash": self.hash,
                "head": {"seq": self.head_seq, "hash": self.head_hash},
            },
        }

    def to_payload(self) -> bytes:
        """Canonical JSON bytes: the DSSE payload."""
        return canonical_bytes(self.to_json())

    @classmethod
    def from_payload(cls, payload: bytes) -> AuditCheckpoint:
        """Strictly parse a checkpoint statement."""
        subjects, pred = open_statement(
            payload, CHECKPOINT_PREDICATE_TYPE, limit=MAX_CHECKPOINT_BYTES
        )
        p = obj(pred, "predicate", {"center", "issuedAt", "seq", "hash", "head"})
        c = obj(p["center"], "predicate.center", {"repo", "branch", "trustRoot"})
        for name in ("repo", "branch"):
            if not isinstance(c[name], str):
                raise MalformedBundle(f"predicate.center.{name} must be a string")
        center = CenterIdentity(
            c["repo"], c["branch"], text_field(c["trustRoot"], "predicate.center.trustRoot")
        )
        seq = int_field(p["seq"], "predicate.seq")
        digest = text_field(p["hash"], "predicate.hash", DIGEST_RE)
        head = obj(p["head"], "predicate.head", {"seq", "hash"})
        head_seq = int_field(head["seq"], "predicate.head.seq")
        head_hash = text_field(head["hash"], "predicate.head.hash", DIGEST_RE)
        if seq > head_seq or (seq == head_seq and digest != head_hash):
            raise MalformedBundle("predicate seq/hash is not an event at or before the head")
        if (seq == 0) != (digest == GENESIS):
            raise MalformedBundle("predicate seq 0 and the genesis hash go together")
        if subjects != _subject(seq, digest):
            raise SubjectMismatch("statement subject differs from predicate seq/hash")
        issued = parse_time(p["issuedAt"], "predicate.issuedAt")
        return cls(center, issued, seq, digest, head_seq, head_hash)


def _subject(seq: int, digest: str) -> list[dict[str, Any]]:
    return [{"name": f"audit-log@{seq}", "digest": {"sha256": digest[7:]}}]


def sign_checkpoint(checkpoint: AuditCheckpoint, signers: Iterable[SigningKey]) -> bytes:
    """Sigstore bundle v0.3 JSON bytes for ``checkpoint``, signed by each signer."""
    signers = list(signers)
    if not signers:
        raise ValueError("at least one signer is required")
    return encode_bundle(sign_envelope(INTOTO_PAYLOAD_TYPE, checkpoint.to_payload(), signers))


def verify_checkpoint(bundle: bytes, root: TrustRoot) -> AuditCheckpoint:
    """The checkpoint in ``bundle`` if the ``timestamp`` threshold of ``root`` signed it."""
    envelope = decode_bundle(bundle, "checkpoint", limit=MAX_CHECKPOINT_BYTES)
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        raise WrongPayloadType(f"checkpoint payloadType is {envelope.payload_type[:60]!r}")
    verify_threshold(
        envelope, root.role_keys("timestamp"), root.threshold("timestamp"), "timestamp"
    )
    return AuditCheckpoint.from_payload(envelope.payload)


def read_checkpoint(bundle: bytes) -> AuditCheckpoint:
    """The checkpoint in ``bundle`` *without* checking signatures (for the exporter's plan)."""
    envelope = decode_bundle(bundle, "checkpoint", limit=MAX_CHECKPOINT_BYTES)
    return AuditCheckpoint.from_payload(envelope.payload)
