"""The trust-root document: keys and thresholds for ``root``, ``release``, ``timestamp``.

Example::

    >>> import datetime as dt
    >>> from konorkestra.trust.keys import Signer
    >>> from konorkestra.trust.rootdoc import RootDocument, build_root_document
    >>> key = Signer.generate().public_key
    >>> doc = build_root_document(version=1, expires=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    ...                          root=[key], release=[key], timestamp=[key])
    >>> RootDocument.from_payload(doc.to_payload()) == doc
    True

Document (the DSSE payload, ``payloadType`` ``application/vnd.konorkestra.root+json``,
canonical JSON)::

    {"_type": "https://konorkestra.io/root/v1", "version": 1, "expires": "…Z",
     "keys": {"<keyid>": {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256",
                          "public": "<base64 DER SubjectPublicKeyInfo>"}},
     "roles": {"root": {"keyids": [...], "threshold": 1}, "release": {...},
               "timestamp": {...}}}

Invariants:

* Exactly the roles ``root``, ``release``, ``timestamp``; each threshold is at
  least 1 and at most its number of distinct key ids; every key id is listed in
  ``keys`` and equals the SHA-256 of its public key (P-256 only).
* The payload is canonical JSON of at most :data:`MAX_ROOT_BYTES`; anything
  else is a :class:`~konorkestra.trust.errors.TrustError`. Signatures and
  rotation are ``konorkestra.trust.root``'s business.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from konorkestra.model.canonical import canonical_bytes
from konorkestra.trust.errors import MalformedBundle
from konorkestra.trust.keys import KeyId, keyid_of, public_der
from konorkestra.trust.wire import (
    b64decode_strict,
    format_time,
    int_field,
    is_hex64,
    list_field,
    obj,
    parse_canonical,
    parse_time,
)

ROOT_PAYLOAD_TYPE = "application/vnd.konorkestra.root+json"
ROOT_TYPE = "https://konorkestra.io/root/v1"
ROLES = ("root", "release", "timestamp")
MAX_ROOT_BYTES = 64 * 1024


@dataclass(frozen=True)
class Role:
    """The keys allowed to sign for a role and how many must."""

    keyids: tuple[KeyId, ...]
    threshold: int


@dataclass(frozen=True)
class RootDocument:
    """The signed content of one trust-root version."""

    version: int
    expires: dt.datetime
    keys: Mapping[KeyId, ec.EllipticCurvePublicKey]
    roles: Mapping[str, Role]

    def to_payload(self) -> bytes:
        """Canonical JSON bytes (what the root role signs)."""
        return canonical_bytes(
            {
                "_type": ROOT_TYPE,
                "version": self.version,
                "expires": format_time(self.expires),
                "keys": {
                    kid: {
                        "keytype": "ecdsa",
                        "scheme": "ecdsa-sha2-nistp256",
                        "public": base64.b64encode(public_der(key)).decode("ascii"),
                    }
                    for kid, key in self.keys.items()
                },
                "roles": {
                    name: {"keyids": list(role.keyids), "threshold": role.threshold}
                    for name, role in self.roles.items()
                },
            }
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> RootDocument:
        """Strictly parse and check a root document."""
        doc = obj(
            parse_canonical(payload, "root", limit=MAX_ROOT_BYTES),
            "root",
            {"_type", "version", "expires", "keys", "roles"},
        )
        if doc["_type"] != ROOT_TYPE:
            raise MalformedBundle(f"root._type is not {ROOT_TYPE}")
        keys = _parse_keys(doc["keys"])
        roles_doc = obj(doc["roles"], "root.roles", set(ROLES))
        roles = {name: _parse_role(name, roles_doc[name], keys) for name in ROLES}
        return cls(
            version=int_field(doc["version"], "root.version", minimum=1),
            expires=parse_time(doc["expires"], "root.expires"),
            keys=keys,
            roles=roles,
        )


def _parse_keys(value: object) -> dict[KeyId, ec.EllipticCurvePublicKey]:
    if not isinstance(value, dict):
        raise MalformedBundle("root.keys must be a JSON object")
    return {KeyId(kid): _parse_key(kid, entry) for kid, entry in value.items()}


def _parse_key(kid: str, value: object) -> ec.EllipticCurvePublicKey:
    what = f"root.keys[{kid[:16]}]"
    entry = obj(value, what, {"keytype", "scheme", "public"})
    if entry["keytype"] != "ecdsa" or entry["scheme"] != "ecdsa-sha2-nistp256":
        raise MalformedBundle(f"{what}: only ecdsa / ecdsa-sha2-nistp256 keys are supported")
    der = b64decode_strict(entry["public"], f"{what}.public")
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MalformedBundle(f"{what}.public is not a DER public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise MalformedBundle(f"{what} is not an ECDSA P-256 key")
    if not is_hex64(kid) or keyid_of(key) != kid:
        raise MalformedBundle(f"{what}: key id is not the SHA-256 of the key")
    return key


def _parse_role(name: str, value: object, keys: Mapping[KeyId, Any]) -> Role:
    what = f"root.roles.{name}"
    role = obj(value, what, {"keyids", "threshold"})
    keyids = list_field(role["keyids"], f"{what}.keyids")
    if len(set(keyids)) != len(keyids):
        raise MalformedBundle(f"{what}.keyids lists a key twice")
    for kid in keyids:
        if kid not in keys:
            raise MalformedBundle(f"{what} names key {str(kid)[:16]}, absent from root.keys")
    threshold = int_field(role["threshold"], f"{what}.threshold", minimum=1)
    if threshold > len(keyids):
        raise MalformedBundle(f"{what}: threshold {threshold} exceeds its {len(keyids)} keys")
    return Role(tuple(KeyId(k) for k in keyids), threshold)


def _role(keys: Sequence[ec.EllipticCurvePublicKey], threshold: int) -> Role:
    return Role(tuple(sorted({keyid_of(k) for k in keys})), threshold)


def build_root_document(
    *,
    version: int,
    expires: dt.datetime,
    root: Sequence[ec.EllipticCurvePublicKey],
    release: Sequence[ec.EllipticCurvePublicKey],
    timestamp: Sequence[ec.EllipticCurvePublicKey],
    thresholds: Mapping[str, int] | None = None,
) -> RootDocument:
    """A root document from public keys per role (thresholds default to 1)."""
    given = dict(thresholds or {})
    members = {"root": root, "release": release, "timestamp": timestamp}
    keys = {keyid_of(k): k for ks in members.values() for k in ks}
    roles = {name: _role(ks, given.get(name, 1)) for name, ks in members.items()}
    document = RootDocument(version, expires, keys, roles)
    return RootDocument.from_payload(document.to_payload())  # one set of checks for both sides
