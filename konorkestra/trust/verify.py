"""The Agent's side: a pure state machine that accepts or refuses signed bytes.

Example::

    verifier = Verifier(trust_root, high_water_marks, now, scope={"checkout"})
    release = verifier.verify_release(bundle_bytes)           # or raises TrustError
    for cs in release.statement.configsets:                   # fetch at most cs.size bytes
        release.check_blob(cs.digest, fetch(cs.digest, max_bytes=cs.size))
    persist(verifier.high_water_marks)                        # after the store commit
    status = verifier.check_freshness(freshness_bytes)        # stale? withheld news?

Rules for a release bundle, checked in this order (each refusal is its own
:class:`~konorkestra.trust.errors.TrustError`):

R1  The bundle is at most ``limits.max_bundle_bytes`` long (TooLarge), checked
    before anything is parsed.
R2  It is strict canonical JSON in exactly the bundle v0.3 shape: no duplicate
    keys, trailing bytes, unknown fields, log entries or bad base64; the key
    hint equals the first signature's key id (MalformedBundle).
R3  ``payloadType`` is ``application/vnd.in-toto+json`` (WrongPayloadType).
R4  Keys come from the trust root's ``release`` role, never from the bundle.
    Every signature names a distinct release key (DuplicateSignature,
    UnknownKey) and verifies over the DSSE PAE (BadSignature); there are at
    least the role's threshold of them (ThresholdNotMet). Only then is the
    payload parsed.
R5  ``_type`` is in-toto Statement v1 and ``predicateType`` is
    ``https://konorkestra.io/release/v1`` (WrongPredicateType); the predicate is
    strict (MalformedBundle); subjects equal the ConfigSet digests
    (SubjectMismatch).
R6  The group is inside the node's scope, when a scope is given (OutOfScope).
R7  ``now - clock_skew <= expiresAt`` (Expired).
R8  With the group's high-water mark ``(s, d)``: a sequence above ``s`` is
    new; equal to ``s`` with statement digest ``d`` is an idempotent
    re-delivery; equal with another digest is a SequenceConflict; below is a
    RollbackAttack.
R9  Every ConfigSet's signed size is at most ``limits.max_blob_bytes``
    (TooLarge); each blob given must have exactly the signed size and digest
    (SubjectMismatch). Blobs not given are checked later with
    :meth:`VerifiedRelease.check_blob`.
R10 Only when all of the above hold does the group's high-water mark move to
    ``(sequence, statement digest)``; a refusal changes no state.

Rules for a freshness bundle (:meth:`Verifier.check_freshness`): R1-R4 with its
own size cap and the ``timestamp`` role; predicate type
``https://konorkestra.io/freshness/v1``; the node must be this verifier's node
when one is set (OutOfScope); ``issuedAt`` may not go back before the last one
accepted (RollbackAttack). Past ``expiresAt + clock_skew`` the answer is a
status with ``stale=True``, not an error: the Agent keeps serving
last-known-good and reports it. Per group in scope the status says
``current``, ``behind`` (withheld news: the Center signed a higher sequence
than this node holds), ``ahead`` (the node holds more than the Center claims)
or ``unlisted``; the same sequence with another digest is a SequenceConflict.

The trust root must not be expired at ``now`` (Expired, at construction).
Nothing here reads the clock, the network or the disk.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from konorkestra.model.canonical import digest_of
from konorkestra.model.release import ConfigSetRef, Release
from konorkestra.model.releaseid import release_id
from konorkestra.model.types import Digest, GroupName, NodeId, ReleaseId, Sequence
from konorkestra.trust.dsse import INTOTO_PAYLOAD_TYPE, Envelope, decode_bundle, verify_threshold
from konorkestra.trust.errors import (
    Expired,
    MalformedBundle,
    OutOfScope,
    RollbackAttack,
    SequenceConflict,
    SubjectMismatch,
    TooLarge,
    WrongPayloadType,
)
from konorkestra.trust.freshness import FreshnessStatement
from konorkestra.trust.keys import KeyId
from konorkestra.trust.root import TrustRoot
from konorkestra.trust.statement import ReleaseStatement
from konorkestra.trust.wire import format_time

DEFAULT_CLOCK_SKEW = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Limits:
    """Size caps for untrusted input, in bytes."""

    max_bundle_bytes: int = 256 * 1024
    max_blob_bytes: int = 16 * 1024 * 1024
    max_freshness_bytes: int = 64 * 1024


@dataclass(frozen=True)
class HighWaterMark:
    """The highest release a node has accepted for one group."""

    sequence: Sequence | int
    digest: Digest | str


@dataclass(frozen=True)
class VerifiedRelease:
    """A release that passed R1-R8 (and R9 for the blobs that were given)."""

    statement: ReleaseStatement
    release_id: ReleaseId
    statement_digest: Digest
    signers: tuple[KeyId, ...]
    redelivery: bool
    blobs_checked: bool
    max_blob_bytes: int = field(default=16 * 1024 * 1024, repr=False)

    @property
    def release(self) -> Release:
        """The verified statement as the shared :class:`~konorkestra.model.release.Release`."""
        return self.statement.release(self.statement_digest)

    def check_blob(self, digest: str, data: bytes) -> None:
        """``data`` must be exactly the signed blob ``digest`` (size, then SHA-256)."""
        for cs in self.statement.configsets:
            if cs.digest == digest:
                _check_blob(cs.ref, cs.digest, _signed_size(cs), data, self.max_blob_bytes)
                return
        raise SubjectMismatch(f"{digest[:23]} is not a subject of release {self.release_id}")


class GroupState(enum.Enum):
    """How a group held by the node compares with the freshness statement."""

    CURRENT = "current"
    BEHIND = "behind"
    AHEAD = "ahead"
    UNLISTED = "unlisted"


@dataclass(frozen=True)
class FreshnessStatus:
    """The outcome of a verified freshness statement."""

    statement: FreshnessStatement
    stale: bool
    groups: Mapping[GroupName, GroupState]
    signers: tuple[KeyId, ...]

    @property
    def withheld(self) -> tuple[GroupName, ...]:
        """Groups with news the Center signed but this node does not hold."""
        return tuple(g for g, s in self.groups.items() if s is GroupState.BEHIND)


def _signed_size(cs: ConfigSetRef) -> int:
    """A statement's ConfigSets always carry their size (R5 parses it); never guess one."""
    if cs.size is None:
        raise MalformedBundle(f"{cs.ref} has no signed size")
    return cs.size


def _check_blob(ref: str, digest: str, size: int, data: bytes, cap: int) -> None:
    if len(data) > cap:
        raise TooLarge(f"blob of {ref} is {len(data)} bytes, over the {cap}-byte cap")
    if len(data) != size:
        raise SubjectMismatch(f"blob of {ref} is {len(data)} bytes; the release signed {size}")
    if digest_of(data) != digest:
        raise SubjectMismatch(f"blob of {ref} does not match its signed digest {digest[:23]}…")


class Verifier:
    """Release and freshness verification for one node at one instant ``now``."""

    def __init__(
        self,
        trust_root: TrustRoot,
        high_water_marks: Mapping[GroupName, HighWaterMark] | Mapping[str, HighWaterMark],
        now: dt.datetime,
        *,
        scope: Collection[str] | None = None,
        node: NodeId | str | None = None,
        clock_skew: dt.timedelta = DEFAULT_CLOCK_SKEW,
        limits: Limits = Limits(),
        last_freshness: dt.datetime | None = None,
    ) -> None:
        trust_root.check_fresh(now, clock_skew)
        self.trust_root = trust_root
        self._marks: dict[GroupName, HighWaterMark] = {
            GroupName(g): m for g, m in high_water_marks.items()
        }
        self.now = now
        self.scope = None if scope is None else frozenset(scope)
        self.node = node
        self.clock_skew = clock_skew
        self.limits = limits
        self.last_freshness = last_freshness

    @property
    def high_water_marks(self) -> Mapping[GroupName, HighWaterMark]:
        """A copy of the current marks, to persist once the release is committed."""
        return dict(self._marks)

    def update_root(self, chain: list[bytes]) -> TrustRoot:
        """Rotate to the next root version(s) (TUF rules, see ``konorkestra.trust.root``)."""
        self.trust_root = self.trust_root.update_chain(chain, self.now, self.clock_skew)
        return self.trust_root

    def _open(
        self, data: bytes, what: str, cap: int, role: str
    ) -> tuple[Envelope, frozenset[KeyId]]:
        envelope = decode_bundle(data, what, limit=cap)  # R1, R2
        if envelope.payload_type != INTOTO_PAYLOAD_TYPE:  # R3
            raise WrongPayloadType(
                f"{what} payloadType is {envelope.payload_type[:60]!r}, "
                f"expected {INTOTO_PAYLOAD_TYPE}"
            )
        root = self.trust_root
        signers = verify_threshold(envelope, root.role_keys(role), root.threshold(role), role)
        return envelope, signers  # R4

    def verify_release(
        self, bundle: bytes, blobs: Mapping[str, bytes] | None = None
    ) -> VerifiedRelease:
        """Apply R1-R10 to a release bundle (and the blobs given, keyed by digest)."""
        envelope, signers = self._open(
            bundle, "release bundle", self.limits.max_bundle_bytes, "release"
        )
        st = ReleaseStatement.from_payload(envelope.payload, limit=self.limits.max_bundle_bytes)
        if self.scope is not None and st.group not in self.scope:  # R6
            raise OutOfScope(f"release for group {st.group!r}, which this node does not serve")
        if self.now - self.clock_skew > st.expires_at:  # R7
            raise Expired(
                f"release {st.group}#{st.sequence} expired at {format_time(st.expires_at)}"
            )
        digest = digest_of(envelope.payload)
        mark = self._marks.get(GroupName(st.group))
        redelivery = False
        if mark is not None:  # R8
            if st.sequence < mark.sequence:
                raise RollbackAttack(
                    f"{st.group} sequence {st.sequence} is below the trusted {mark.sequence}"
                )
            if st.sequence == mark.sequence:
                if digest != mark.digest:
                    raise SequenceConflict(
                        f"{st.group} sequence {st.sequence} is already trusted with other content"
                    )
                redelivery = True
        cap = self.limits.max_blob_bytes
        for cs in st.configsets:  # R9
            size = _signed_size(cs)
            if size > cap:
                raise TooLarge(f"blob of {cs.ref} is signed as {size} bytes, over {cap}")
            if blobs is not None:
                data = blobs.get(cs.digest)
                if data is None:
                    raise SubjectMismatch(f"blob of {cs.ref} ({cs.digest[:23]}…) was not given")
                _check_blob(cs.ref, cs.digest, size, data, cap)
        self._marks[GroupName(st.group)] = HighWaterMark(st.sequence, digest)  # R10
        return VerifiedRelease(
            statement=st,
            release_id=release_id(st.group, st.sequence, digest),
            statement_digest=digest,
            signers=tuple(sorted(signers)),
            redelivery=redelivery,
            blobs_checked=blobs is not None,
            max_blob_bytes=cap,
        )

    def check_freshness(self, bundle: bytes) -> FreshnessStatus:
        """Verify a freshness bundle and compare it with the high-water marks."""
        envelope, signers = self._open(
            bundle, "freshness bundle", self.limits.max_freshness_bytes, "timestamp"
        )
        fs = FreshnessStatement.from_payload(
            envelope.payload, limit=self.limits.max_freshness_bytes
        )
        if self.node is not None and fs.node != self.node:
            raise OutOfScope(f"freshness statement is for node {fs.node!r}, not {self.node!r}")
        if self.last_freshness is not None and fs.issued_at < self.last_freshness:
            raise RollbackAttack(
                f"freshness issued {format_time(fs.issued_at)} is older than the last accepted "
                f"({format_time(self.last_freshness)})"
            )
        states: dict[GroupName, GroupState] = {}
        for latest in fs.latest:
            group = GroupName(latest.group)
            if self.scope is not None and group not in self.scope:
                continue
            mark = self._marks.get(group)
            if mark is None or mark.sequence < latest.sequence:
                states[group] = GroupState.BEHIND
            elif mark.sequence > latest.sequence:
                states[group] = GroupState.AHEAD
            elif mark.digest != latest.digest:
                raise SequenceConflict(
                    f"freshness names {group} sequence {latest.sequence} with other content"
                )
            else:
                states[group] = GroupState.CURRENT
        for group in self._marks:
            if self.scope is None or group in self.scope:
                states.setdefault(group, GroupState.UNLISTED)
        self.last_freshness = fs.issued_at
        return FreshnessStatus(
            statement=fs,
            stale=self.now - self.clock_skew > fs.expires_at,
            groups=states,
            signers=tuple(sorted(signers)),
        )
