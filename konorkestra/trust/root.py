"""The trust root: keys and thresholds per role, signed by the root role, rotated per TUF.

Example::

    >>> import datetime as dt
    >>> from konorkestra.trust.keys import Signer
    >>> from konorkestra.trust.root import TrustRoot, make_root, rotate_root
    >>> now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    >>> root_key, release_key, ts_key = Signer.generate(), Signer.generate(), Signer.generate()
    >>> v1 = make_root(root=[root_key.public_key], release=[release_key.public_key],
    ...                timestamp=[ts_key.public_key], expires=now + dt.timedelta(days=365),
    ...                signers=[root_key])
    >>> trusted = TrustRoot.from_bytes(v1)
    >>> new_root_key = Signer.generate()
    >>> v2 = rotate_root(trusted, root=[new_root_key.public_key], signers=[root_key, new_root_key],
    ...                  expires=now + dt.timedelta(days=365), now=now)
    >>> trusted.update(v2, now).version
    2

Invariants (TUF 5.3, adapted):

* The document format and its own checks are in ``konorkestra.trust.rootdoc``.
* A root is trusted at bootstrap (:meth:`TrustRoot.from_bytes`) only if it is
  signed by its own root threshold.
* Version N+1 is accepted only if signed by root threshold of version N *and*
  by its own; a version other than exactly N+1 is a :class:`RootRotationError`
  (no gaps, no replays). Every signature must verify by a root key of N or N+1.
* Intermediate roots in a chain may have expired; the final trusted root may
  not (:class:`Expired`). A verifier refuses to start on an expired root.
* Public keys are parsed once per root, so verification costs only the ECDSA.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from konorkestra.trust.dsse import (
    Envelope,
    decode_envelope,
    encode_envelope,
    require_threshold,
    sign_envelope,
    verify_signatures,
)
from konorkestra.trust.errors import (
    Expired,
    RootRotationError,
    TrustError,
    WrongPayloadType,
)
from konorkestra.trust.keys import KeyId, SigningKey
from konorkestra.trust.rootdoc import (
    MAX_ROOT_BYTES,
    ROLES,
    ROOT_PAYLOAD_TYPE,
    ROOT_TYPE,
    Role,
    RootDocument,
    build_root_document,
)
from konorkestra.trust.wire import format_time

__all__ = [
    "MAX_ROOT_BYTES",
    "ROLES",
    "ROOT_PAYLOAD_TYPE",
    "ROOT_TYPE",
    "Role",
    "RootDocument",
    "TrustRoot",
    "build_root_document",
    "make_root",
    "rotate_root",
    "sign_root",
]


class TrustRoot:
    """A verified trust-root version, with its role keys loaded for fast verification."""

    def __init__(self, document: RootDocument, raw: bytes) -> None:
        self.document = document
        self.raw = raw
        """The signed envelope bytes, to persist as-is."""
        self._role_keys = {
            name: {kid: document.keys[kid] for kid in role.keyids}
            for name, role in document.roles.items()
        }

    @property
    def version(self) -> int:
        """The root version (1, 2, …)."""
        return self.document.version

    @property
    def expires(self) -> dt.datetime:
        """When this root stops being acceptable as the final trusted root."""
        return self.document.expires

    def role_keys(self, role: str) -> Mapping[KeyId, ec.EllipticCurvePublicKey]:
        """The loaded public keys of ``role``."""
        return self._role_keys[role]

    def threshold(self, role: str) -> int:
        """How many distinct ``role`` keys must sign."""
        return self.document.roles[role].threshold

    def check_fresh(self, now: dt.datetime, clock_skew: dt.timedelta = dt.timedelta(0)) -> None:
        """Raise :class:`Expired` if this root is past its expiry at ``now``."""
        if now - clock_skew > self.expires:
            raise Expired(f"trust root v{self.version} expired at {format_time(self.expires)}")

    @classmethod
    def from_bytes(cls, data: bytes) -> TrustRoot:
        """Bootstrap: trust ``data`` if it is signed by its own root threshold."""
        envelope, document = _open(data, "trust root")
        own = {kid: document.keys[kid] for kid in _root_ids(document)}
        valid = verify_signatures(envelope, own, "root")
        _require_root(valid, document, document, "its own")
        return cls(document, data)

    def update(
        self, new_root: bytes, now: dt.datetime, clock_skew: dt.timedelta = dt.timedelta(0)
    ) -> TrustRoot:
        """Move to version N+1 (see :meth:`update_chain`)."""
        return self.update_chain([new_root], now, clock_skew)

    def update_chain(
        self, chain: Iterable[bytes], now: dt.datetime, clock_skew: dt.timedelta = dt.timedelta(0)
    ) -> TrustRoot:
        """Apply N+1, N+2, … in order; the last one must not be expired."""
        current = self
        for data in chain:
            current = current._step(data)
        current.check_fresh(now, clock_skew)
        return current

    def _step(self, data: bytes) -> TrustRoot:
        envelope, document = _open(data, f"root v{self.version + 1}")
        if document.version != self.version + 1:
            kind = "skips a version" if document.version > self.version else "is not newer"
            raise RootRotationError(
                f"root v{document.version} {kind}: trusted is v{self.version}, "
                f"the next must be v{self.version + 1}"
            )
        union = {**self.document.keys, **document.keys}
        allowed = {kid: union[kid] for kid in (*self.role_keys("root"), *_root_ids(document))}
        valid = verify_signatures(envelope, allowed, "root")
        _require_root(valid, self.document, document, f"v{self.version}'s")
        _require_root(valid, document, document, "its own")
        return TrustRoot(document, data)


def _root_ids(document: RootDocument) -> tuple[KeyId, ...]:
    return document.roles["root"].keyids


def _require_root(
    valid: frozenset[KeyId], signer_doc: RootDocument, new_doc: RootDocument, whose: str
) -> None:
    role = signer_doc.roles["root"]
    try:
        require_threshold(valid, role.keyids, role.threshold, f"root v{signer_doc.version}")
    except TrustError as exc:
        raise type(exc)(
            f"root v{new_doc.version} lacks {whose} root threshold: {exc.reason}"
        ) from None


def _open(data: bytes, what: str) -> tuple[Envelope, RootDocument]:
    envelope = decode_envelope(data, what, limit=MAX_ROOT_BYTES)
    if envelope.payload_type != ROOT_PAYLOAD_TYPE:
        raise WrongPayloadType(f"{what} has payloadType {envelope.payload_type[:60]!r}")
    return envelope, RootDocument.from_payload(envelope.payload)


def sign_root(document: RootDocument, signers: Iterable[SigningKey]) -> bytes:
    """The signed trust-root envelope bytes."""
    return encode_envelope(sign_envelope(ROOT_PAYLOAD_TYPE, document.to_payload(), signers))


def make_root(
    *,
    root: Sequence[ec.EllipticCurvePublicKey],
    release: Sequence[ec.EllipticCurvePublicKey],
    timestamp: Sequence[ec.EllipticCurvePublicKey],
    expires: dt.datetime,
    signers: Iterable[SigningKey],
    thresholds: Mapping[str, int] | None = None,
) -> bytes:
    """Version 1 of a trust root, signed by ``signers`` (the root keys); checked before return."""
    document = build_root_document(
        version=1,
        expires=expires,
        root=root,
        release=release,
        timestamp=timestamp,
        thresholds=thresholds,
    )
    data = sign_root(document, signers)
    TrustRoot.from_bytes(data)
    return data


def rotate_root(
    current: TrustRoot,
    *,
    signers: Iterable[SigningKey],
    expires: dt.datetime,
    now: dt.datetime,
    root: Sequence[ec.EllipticCurvePublicKey] | None = None,
    release: Sequence[ec.EllipticCurvePublicKey] | None = None,
    timestamp: Sequence[ec.EllipticCurvePublicKey] | None = None,
    thresholds: Mapping[str, int] | None = None,
) -> bytes:
    """Version N+1: roles not given keep their keys; checked with :meth:`TrustRoot.update`."""

    def keep(name: str, given: Sequence[ec.EllipticCurvePublicKey] | None) -> list[Any]:
        return list(given) if given is not None else list(current.role_keys(name).values())

    merged = {name: current.threshold(name) for name in ROLES} | dict(thresholds or {})
    document = build_root_document(
        version=current.version + 1,
        expires=expires,
        root=keep("root", root),
        release=keep("release", release),
        timestamp=keep("timestamp", timestamp),
        thresholds=merged,
    )
    data = sign_root(document, signers)
    current.update(data, now)
    return data
