"""Signed Releases: keys, DSSE/in-toto/Sigstore-bundle encoding, trust root, verifier.

Example (the Center signs, an Agent verifies)::

    import datetime as dt
    from konorkestra import trust

    now = dt.datetime.now(dt.UTC)
    root_key, release_key, ts_key = (trust.Signer.generate() for _ in range(3))
    root_bytes = trust.make_root(
        root=[root_key.public_key], release=[release_key.public_key],
        timestamp=[ts_key.public_key], expires=now + dt.timedelta(days=365),
        signers=[root_key])
    statement = trust.ReleaseStatement.create(group="checkout", sequence=1, ..., now=now)
    bundle = trust.sign_release(statement, [release_key])

    verifier = trust.Verifier(trust.TrustRoot.from_bytes(root_bytes), {}, now,
                              scope={"checkout"})
    release = verifier.verify_release(bundle)       # VerifiedRelease or a TrustError

Invariants: pure (no network, no clock, no disk: key files are
:mod:`konorkestra.keyfiles`); every refusal is a :class:`TrustError` with a stable ``code``. The
verifier's rules are in ``konorkestra.trust.verify``; the threat model in
``docs/reference/security.md``.
"""

from konorkestra.trust.errors import (
    BadSignature,
    DuplicateSignature,
    Expired,
    MalformedBundle,
    OutOfScope,
    RollbackAttack,
    RootRotationError,
    SequenceConflict,
    SubjectMismatch,
    ThresholdNotMet,
    TooLarge,
    TrustError,
    UnknownKey,
    WrongPayloadType,
    WrongPredicateType,
)
from konorkestra.trust.freshness import DEFAULT_FRESHNESS_TTL, FreshnessStatement, LatestRelease
from konorkestra.trust.keys import KeyId, KeyStorageError, Signer, SigningKey, keyid_of
from konorkestra.trust.root import TrustRoot, make_root, rotate_root
from konorkestra.trust.sign import sign_freshness, sign_release
from konorkestra.trust.statement import ReleaseStatement, Source
from konorkestra.trust.verify import (
    FreshnessStatus,
    GroupState,
    HighWaterMark,
    Limits,
    VerifiedRelease,
    Verifier,
)

__all__ = [
    "DEFAULT_FRESHNESS_TTL",
    "BadSignature",
    "DuplicateSignature",
    "Expired",
    "FreshnessStatement",
    "FreshnessStatus",
    "GroupState",
    "HighWaterMark",
    "KeyId",
    "KeyStorageError",
    "LatestRelease",
    "Limits",
    "MalformedBundle",
    "OutOfScope",
    "ReleaseStatement",
    "RollbackAttack",
    "RootRotationError",
    "SequenceConflict",
    "Signer",
    "SigningKey",
    "Source",
    "SubjectMismatch",
    "ThresholdNotMet",
    "TooLarge",
    "TrustError",
    "TrustRoot",
    "UnknownKey",
    "VerifiedRelease",
    "Verifier",
    "WrongPayloadType",
    "WrongPredicateType",
    "keyid_of",
    "make_root",
    "rotate_root",
    "sign_freshness",
    "sign_release",
]
