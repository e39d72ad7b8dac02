"""DSSE envelopes and their Sigstore bundle v0.3 encoding (``publicKey`` hint).

Example::

    >>> from konorkestra.trust.keys import Signer
    >>> from konorkestra.trust.dsse import sign_envelope, encode_bundle, decode_bundle
    >>> from konorkestra.trust.dsse import verify_threshold
    >>> signer = Signer.generate()
    >>> env = sign_envelope("application/vnd.in-toto+json", b"{}", [signer])
    >>> data = encode_bundle(env)
    >>> back = decode_bundle(data, "bundle", limit=1 << 20)
    >>> verify_threshold(back, {signer.keyid: signer.public_key}, 1, "release") == {signer.keyid}
    True

Invariants:

* The signature covers the DSSE pre-authentication encoding
  ``"DSSEv1" SP len(type) SP type SP len(payload) SP payload``, so the payload
  type is signed too.
* A bundle is canonical JSON: ``mediaType`` exactly
  ``application/vnd.dev.sigstore.bundle.v0.3+json``; ``verificationMaterial``
  holds exactly ``publicKey.hint`` and an empty ``tlogEntries`` (no
  certificates, no log entries, nothing else); ``dsseEnvelope`` holds exactly
  ``payload``, ``payloadType`` and ``signatures``.
* The hint is an unauthenticated *hint*: it must equal the first signature's
  ``keyid`` (as the bundle spec requires) and is never used to find a key.
* Several signatures may be present (for thresholds). This goes beyond the
  bundle spec, which allows one; with threshold 1 a bundle has one signature and
  is spec-conformant.
* :func:`verify_threshold` is all-or-nothing: every signature must name a key
  of the role, keys may not repeat, every signature must verify, and there must
  be at least ``threshold`` of them. An extra bad or foreign signature is an
  error, never ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from konorkestra.model.canonical import canonical_bytes
from konorkestra.trust.errors import (
    BadSignature,
    DuplicateSignature,
    MalformedBundle,
    ThresholdNotMet,
    UnknownKey,
)
from konorkestra.trust.keys import KeyId, SigningKey
from konorkestra.trust.wire import b64decode_strict, b64encode, is_hex64, obj, parse_canonical

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_ECDSA = ec.ECDSA(hashes.SHA256())


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    ptype = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    """One DSSE signature: who (``keyid``) and the DER ECDSA bytes."""

    keyid: KeyId
    sig: bytes = field(repr=False)


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: a typed payload and its signatures."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        """The DSSE JSON object (base64 payload and signatures)."""
        return {
            "payload": b64encode(self.payload),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": b64encode(s.sig)} for s in self.signatures],
        }

    @classmethod
    def from_json(cls, value: object, what: str) -> Envelope:
        """Strictly decode a DSSE JSON object."""
        env = obj(value, what, {"payload", "payloadType", "signatures"})
        payload_type = env["payloadType"]
        if not isinstance(payload_type, str):
            raise MalformedBundle(f"{what}.payloadType must be a string")
        sigs = env["signatures"]
        if not isinstance(sigs, list):
            raise MalformedBundle(f"{what}.signatures must be a JSON array")
        signatures = []
        for i, raw in enumerate(sigs):
            item = obj(raw, f"{what}.signatures[{i}]", {"keyid", "sig"})
            keyid = item["keyid"]
            if not isinstance(keyid, str) or not is_hex64(keyid):
                raise MalformedBundle(f"{what}.signatures[{i}].keyid is not a hex SHA-256")
            sig = b64decode_strict(item["sig"], f"{what}.signatures[{i}].sig")
            signatures.append(Signature(KeyId(keyid), sig))
        payload = b64decode_strict(env["payload"], f"{what}.payload")
        return cls(payload_type, payload, tuple(signatures))


def sign_envelope(payload_type: str, payload: bytes, signers: Iterable[SigningKey]) -> Envelope:
    """Sign ``payload`` with every signer (in the order given)."""
    message = pae(payload_type, payload)
    sigs = tuple(Signature(s.keyid, s.sign(message)) for s in signers)
    return Envelope(payload_type, payload, sigs)


def encode_envelope(envelope: Envelope) -> bytes:
    """A bare DSSE envelope as canonical JSON (used for trust roots)."""
    return canonical_bytes(envelope.to_json())


def decode_envelope(data: bytes, what: str, *, limit: int) -> Envelope:
    """Strictly decode a bare DSSE envelope of at most ``limit`` bytes."""
    return Envelope.from_json(parse_canonical(data, what, limit=limit), what)


def encode_bundle(envelope: Envelope) -> bytes:
    """A Sigstore bundle v0.3 (canonical JSON) around ``envelope``."""
    hint = envelope.signatures[0].keyid if envelope.signatures else ""
    return canonical_bytes(
        {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
            "dsseEnvelope": envelope.to_json(),
        }
    )


def decode_bundle(data: bytes, what: str, *, limit: int) -> Envelope:
    """Strictly decode a bundle written by :func:`encode_bundle`."""
    doc = obj(
        parse_canonical(data, what, limit=limit),
        what,
        {"mediaType", "verificationMaterial", "dsseEnvelope"},
    )
    if doc["mediaType"] != BUNDLE_MEDIA_TYPE:
        raise MalformedBundle(f"{what}.mediaType is not {BUNDLE_MEDIA_TYPE}")
    material = obj(
        doc["verificationMaterial"], f"{what}.verificationMaterial", {"publicKey", "tlogEntries"}
    )
    if material["tlogEntries"] != []:
        raise MalformedBundle(f"{what} has transparency-log entries; offline bundles have none")
    hint = obj(material["publicKey"], f"{what}.verificationMaterial.publicKey", {"hint"})["hint"]
    envelope = Envelope.from_json(doc["dsseEnvelope"], f"{what}.dsseEnvelope")
    first = envelope.signatures[0].keyid if envelope.signatures else ""
    if hint != first:
        raise MalformedBundle(f"{what}: publicKey hint does not match the first signature's keyid")
    return envelope


def verify_signatures(
    envelope: Envelope, keys: Mapping[KeyId, ec.EllipticCurvePublicKey], role: str
) -> frozenset[KeyId]:
    """Every signature must be by a distinct key in ``keys`` and verify; return the key ids."""
    message = pae(envelope.payload_type, envelope.payload)
    seen: set[KeyId] = set()
    for sig in envelope.signatures:
        if sig.keyid in seen:
            raise DuplicateSignature(f"key {sig.keyid[:16]} signed twice; a key counts once")
        seen.add(sig.keyid)
        key = keys.get(sig.keyid)
        if key is None:
            raise UnknownKey(f"signed by key {sig.keyid[:16]}, which is not a {role} key")
        try:
            key.verify(sig.sig, message, _ECDSA)
        except InvalidSignature:
            raise BadSignature(
                f"signature by {role} key {sig.keyid[:16]} does not verify"
            ) from None
    return frozenset(seen)


def require_threshold(
    valid: frozenset[KeyId], role_keyids: Iterable[KeyId], threshold: int, role: str
) -> None:
    """At least ``threshold`` of ``role_keyids`` must be among the ``valid`` signers."""
    count = len(valid.intersection(role_keyids))
    if count < threshold:
        raise ThresholdNotMet(f"{count} of {threshold} required {role} signatures")


def verify_threshold(
    envelope: Envelope,
    keys: Mapping[KeyId, ec.EllipticCurvePublicKey],
    threshold: int,
    role: str,
) -> frozenset[KeyId]:
    """:func:`verify_signatures` then :func:`require_threshold` for one role."""
    valid = verify_signatures(envelope, keys, role)
    require_threshold(valid, keys, threshold, role)
    return valid
