"""Trust errors: why a bundle, a freshness statement or a trust root was refused.

Example::

    >>> from konorkestra.trust.errors import BadSignature
    >>> err = BadSignature("signature by key 1a2b… does not verify")
    >>> (err.code, err.reason)
    ('bad_signature', 'signature by key 1a2b… does not verify')
    >>> err.diagnostics()
    'refused: signature by key 1a2b… does not verify (bad_signature)'

Invariants:

* Every refusal is a :class:`TrustError`; nothing else escapes the verifier for
  bad input (foreign exceptions from parsers or ``cryptography`` are wrapped).
* Each subclass has a stable machine ``code`` (never renamed: agents report it
  and dashboards count it) and each instance a one-line operator-facing
  ``reason`` saying exactly what was wrong.
* These are *untrusted data* errors: the input is bad, retrying with the same
  bytes gives the same answer. Transport and store errors live elsewhere.
"""

from __future__ import annotations


class TrustError(Exception):
    """Base class: the input is not trustworthy. ``reason`` says why, in one line."""

    code = "trust_error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason.replace("\n", " ")

    def diagnostics(self) -> str:
        """The one line shown to an operator."""
        return f"refused: {self.reason} ({self.code})"


class MalformedBundle(TrustError):
    """Bytes that are not exactly the expected strict, canonical JSON structure."""

    code = "malformed"


class TooLarge(TrustError):
    """An envelope, payload or blob exceeds its size cap."""

    code = "too_large"


class WrongPayloadType(TrustError):
    """The DSSE ``payloadType`` is not the one this verifier expects."""

    code = "wrong_payload_type"


class WrongPredicateType(TrustError):
    """The in-toto ``_type`` or ``predicateType`` is not the expected one."""

    code = "wrong_predicate_type"


class UnknownKey(TrustError):
    """A signature names a key the trust root does not list for the role."""

    code = "unknown_key"


class BadSignature(TrustError):
    """A signature by a known key does not verify over the DSSE PAE."""

    code = "bad_signature"


class DuplicateSignature(TrustError):
    """Two signatures name the same key; a key counts once towards a threshold."""

    code = "duplicate_signature"


class ThresholdNotMet(TrustError):
    """Fewer distinct valid signatures than the role's threshold."""

    code = "threshold_not_met"


class SubjectMismatch(TrustError):
    """A blob's bytes do not match the signed subject digest or size."""

    code = "subject_mismatch"


class RollbackAttack(TrustError):
    """A sequence (or freshness time) below what this node already trusts."""

    code = "rollback"


class SequenceConflict(TrustError):
    """Same group and sequence as a trusted release, but different content."""

    code = "sequence_conflict"


class Expired(TrustError):
    """A release, or the final trusted root, is past its expiry."""

    code = "expired"


class OutOfScope(TrustError):
    """A release or freshness statement for a group (or node) this node does not serve."""

    code = "out_of_scope"


class RootRotationError(TrustError):
    """A new root does not follow the current one (version gap, not newer)."""

    code = "root_rotation"
