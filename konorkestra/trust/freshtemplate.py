"""Freshness bundles for many nodes at the cost of one signature each.

A new Release wakes every parked agent of its Group at once, and each answer
carries a freshness statement for its own node. The statements differ only in
the node's name, so the canonical payload is made once per (latest Releases,
``issuedAt``) and the name spliced in; per node what remains is one signature
per timestamp key and a little byte joining.

Example::

    >>> import datetime as dt
    >>> from konorkestra.trust.freshness import FreshnessStatement, LatestRelease
    >>> from konorkestra.trust.freshtemplate import FreshnessTemplate
    >>> now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    >>> latest = [LatestRelease("checkout", 7, "sha256:" + "ab" * 32)]
    >>> tpl = FreshnessTemplate.create(latest=latest, now=now)
    >>> slow = FreshnessStatement.create(node="node-01", latest=latest, now=now)
    >>> tpl.payload("node-01") == slow.to_payload()
    True

Invariants:

* :meth:`FreshnessTemplate.payload` is byte for byte
  ``FreshnessStatement.create(node=node, latest=…, now=…, ttl=…).to_payload()``,
  for every ``node``; a name the statement refuses is refused with the same
  error, because anything but a plain well-formed name (letters, digits,
  ``.``, ``_``, ``-``: characters canonical JSON never escapes) takes that
  slow path itself.
* :meth:`FreshnessTemplate.sign` is byte for byte
  :func:`konorkestra.trust.sign.sign_freshness` of that statement, given the
  same signatures: the DSSE pre-authentication encoding is the one
  :func:`konorkestra.trust.dsse.pae` makes, and the bundle's canonical JSON is
  joined from fixed parts around values canonical JSON never escapes (base64
  and hex key ids); a key id of any other form is encoded by
  :func:`konorkestra.trust.dsse.encode_bundle` itself.
* The latest Releases are checked once, when the template is made, by
  :meth:`FreshnessStatement.create`'s own checks.
* Pure: the time is passed in; no clock, no I/O.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from konorkestra.model.canonical import canonical_bytes
from konorkestra.trust.dsse import (
    BUNDLE_MEDIA_TYPE,
    INTOTO_PAYLOAD_TYPE,
    Envelope,
    Signature,
    encode_bundle,
    pae,
)
from konorkestra.trust.freshness import DEFAULT_FRESHNESS_TTL, FreshnessStatement, LatestRelease
from konorkestra.trust.keys import SigningKey
from konorkestra.trust.wire import is_hex64

_PLAIN_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A node name the statement accepts whose canonical JSON is the name in quotes."""

_HOLE = "\x00"
"""The template's node: canonical JSON writes it ``"\\u0000"``, which no checked field holds."""

_BUNDLE_HEAD = b'{"dsseEnvelope":{"payload":"'
_BUNDLE_TYPE = b'","payloadType":' + canonical_bytes(INTOTO_PAYLOAD_TYPE) + b',"signatures":['
_BUNDLE_TAIL = (
    b']},"mediaType":' + canonical_bytes(BUNDLE_MEDIA_TYPE)
    + b',"verificationMaterial":{"publicKey":{"hint":"'
)  # fmt: skip
_BUNDLE_END = b'"},"tlogEntries":[]}}'


@dataclass(frozen=True)
class FreshnessTemplate:
    """One freshness statement with its node left open; see the module invariants."""

    latest: tuple[LatestRelease, ...]
    now: dt.datetime
    ttl: dt.timedelta
    head: bytes
    tail: bytes

    @classmethod
    def create(
        cls,
        *,
        latest: Iterable[LatestRelease],
        now: dt.datetime,
        ttl: dt.timedelta = DEFAULT_FRESHNESS_TTL,
    ) -> FreshnessTemplate:
        """The template of every node's statement listing ``latest``, issued at ``now``."""
        listed = tuple(latest)
        probe = FreshnessStatement.create(node="n", latest=listed, now=now, ttl=ttl)
        payload = dataclasses.replace(probe, node=_HOLE).to_payload()
        hole = canonical_bytes(_HOLE)
        head, found, tail = payload.partition(hole)
        if not found or hole in tail:  # cannot happen: only the node may hold the hole
            raise AssertionError("the freshness template has no single node hole")
        return cls(listed, now, ttl, head, tail)

    def payload(self, node: str) -> bytes:
        """The canonical payload of ``node``'s statement (see the module invariants)."""
        if _PLAIN_NODE.fullmatch(node) is None:
            slow = FreshnessStatement.create(
                node=node, latest=self.latest, now=self.now, ttl=self.ttl
            )
            return slow.to_payload()  # (what create accepts of these is rare; all exact)
        return b"".join((self.head, b'"', node.encode("ascii"), b'"', self.tail))

    def sign(self, node: str, signers: Sequence[SigningKey]) -> bytes:
        """``node``'s freshness bundle, signed by each of ``signers`` in order."""
        if not signers:
            raise ValueError("at least one signer is required")
        payload = self.payload(node)
        message = pae(INTOTO_PAYLOAD_TYPE, payload)
        signatures = [Signature(s.keyid, s.sign(message)) for s in signers]
        return bundle_bytes(payload, signatures)


def bundle_bytes(payload: bytes, signatures: Sequence[Signature]) -> bytes:
    """:func:`~konorkestra.trust.dsse.encode_bundle` of an in-toto envelope, joined
    from fixed parts (byte for byte the same; tested against it)."""
    if not signatures or not all(is_hex64(s.keyid) for s in signatures):
        return encode_bundle(Envelope(INTOTO_PAYLOAD_TYPE, payload, tuple(signatures)))
    sigs = b",".join(
        b'{"keyid":"%s","sig":"%s"}' % (s.keyid.encode("ascii"), base64.b64encode(s.sig))
        for s in signatures
    )
    return b"".join(
        (
            _BUNDLE_HEAD, base64.b64encode(payload), _BUNDLE_TYPE, sigs,
            _BUNDLE_TAIL, signatures[0].keyid.encode("ascii"), _BUNDLE_END,
        )
    )  # fmt: skip
