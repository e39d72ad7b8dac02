"""The Center's side: sign Release and freshness statements into bundles.

Example::

    >>> import datetime as dt
    >>> from konorkestra.trust.keys import Signer
    >>> from konorkestra.trust.freshness import FreshnessStatement
    >>> from konorkestra.trust.sign import sign_freshness
    >>> now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    >>> ts_key = Signer.generate()
    >>> bundle = sign_freshness(FreshnessStatement.create(node="n1", latest=[], now=now), [ts_key])
    >>> bundle.startswith(b'{"dsseEnvelope":')
    True

Invariants:

* A bundle carries exactly the canonical payload of the statement given, in a
  DSSE envelope of type ``application/vnd.in-toto+json``; one signature per
  signer, in the order given (the first names the bundle's key hint).
* Signing never checks thresholds: the signers are whatever the Center holds.
  Verification (``konorkestra.trust.verify``) is the only judge.
* Release bundles are signed by ``release`` role keys, freshness bundles by
  ``timestamp`` keys, trust roots by ``root`` keys.
* Trust roots are made and rotated with ``konorkestra.trust.root.make_root``
  and ``rotate_root``, which check their output with the code an Agent runs.
"""

from __future__ import annotations

from collections.abc import Iterable

from konorkestra.trust.dsse import INTOTO_PAYLOAD_TYPE, encode_bundle, sign_envelope
from konorkestra.trust.freshness import FreshnessStatement
from konorkestra.trust.keys import SigningKey
from konorkestra.trust.statement import ReleaseStatement


def sign_release(statement: ReleaseStatement, signers: Iterable[SigningKey]) -> bytes:
    """Sigstore bundle v0.3 JSON bytes for ``statement``, signed by each signer."""
    return _sign(statement.to_payload(), signers)


def sign_freshness(statement: FreshnessStatement, signers: Iterable[SigningKey]) -> bytes:
    """Sigstore bundle v0.3 JSON bytes for a freshness statement."""
    return _sign(statement.to_payload(), signers)


def _sign(payload: bytes, signers: Iterable[SigningKey]) -> bytes:
    signers = list(signers)
    if not signers:
        raise ValueError("at least one signer is required")
    return encode_bundle(sign_envelope(INTOTO_PAYLOAD_TYPE, payload, signers))
