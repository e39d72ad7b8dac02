"""The freshness template gives exactly the bytes of the slow path (statement, then bundle)."""

from __future__ import annotations

import datetime as dt
import doctest

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from konorkestra.trust import freshtemplate
from konorkestra.trust.dsse import INTOTO_PAYLOAD_TYPE, Envelope, Signature, encode_bundle
from konorkestra.trust.errors import TrustError
from konorkestra.trust.freshness import FreshnessStatement, LatestRelease
from konorkestra.trust.freshtemplate import FreshnessTemplate, bundle_bytes
from konorkestra.trust.keys import KeyId, Signer
from konorkestra.trust.sign import sign_freshness

_DETERMINISTIC = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


class DeterministicSigner:
    """A :class:`Signer` whose signatures are RFC 6979 deterministic: equal bytes compare."""

    def __init__(self, signer: Signer, keyid: str | None = None) -> None:
        self.inner, self.public_key = signer, signer.public_key
        self.keyid = KeyId(keyid or signer.keyid)

    def sign(self, data: bytes) -> bytes:
        return self.inner.private_key.sign(data, _DETERMINISTIC)


KEYS = [DeterministicSigner(Signer.generate()) for _ in range(2)]

GROUP = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?\Z")
LATEST = st.lists(
    st.tuples(GROUP, st.integers(1, 2**53 - 1), st.binary(min_size=32, max_size=32)),
    max_size=5,
    unique_by=lambda t: t[0],
).map(lambda rows: [LatestRelease(g, s, "sha256:" + d.hex()) for g, s, d in rows])
NODE = st.one_of(
    st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"),
    st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\n\Z"),  # `$` would take this one
    st.text(max_size=70),
)
NOW = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)
TTL = st.integers(1, 10**7).map(lambda s: dt.timedelta(seconds=s))


def outcome(make: object) -> tuple[str, object]:
    try:
        return ("ok", make())  # type: ignore[operator]
    except (TrustError, ValueError) as exc:
        return (type(exc).__name__, str(exc))


def test_the_example_holds() -> None:
    assert doctest.testmod(freshtemplate).failed == 0


@settings(max_examples=300, deadline=None)
@given(latest=LATEST, now=NOW, ttl=TTL, nodes=st.lists(NODE, min_size=1, max_size=4))
def test_payload_and_bundle_equal_the_slow_path(
    latest: list[LatestRelease], now: dt.datetime, ttl: dt.timedelta, nodes: list[str]
) -> None:
    tpl = FreshnessTemplate.create(latest=latest, now=now, ttl=ttl)
    for node in nodes:
        slow = outcome(
            lambda node=node: FreshnessStatement.create(node=node, latest=latest, now=now, ttl=ttl)
        )
        fast = outcome(lambda node=node: tpl.payload(node))
        if slow[0] != "ok":
            assert fast == slow  # refused alike, with the same error
            continue
        statement = slow[1]
        assert isinstance(statement, FreshnessStatement)
        assert fast == ("ok", statement.to_payload())
        for signers in (KEYS[:1], KEYS):
            assert tpl.sign(node, signers) == sign_freshness(statement, signers)


def test_a_bad_latest_set_is_refused_when_the_template_is_made() -> None:
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(TrustError):
        FreshnessTemplate.create(latest=[LatestRelease("Bad_Group", 1, "sha256:" + "a" * 64)],
                                 now=now)  # fmt: skip
    with pytest.raises(ValueError):
        FreshnessTemplate.create(latest=[], now=now).sign("n1", [])


@given(payload=st.binary(max_size=300), sigs=st.lists(st.binary(max_size=80), max_size=3))
def test_bundle_bytes_equal_encode_bundle_for_any_key_id(payload: bytes, sigs: list[bytes]) -> None:
    ids = [KeyId("ab" * 32), KeyId('not hex " \\ id'), KeyId("CD" * 32)]
    signatures = [Signature(ids[i % 3], sig) for i, sig in enumerate(sigs)]
    expected = encode_bundle(Envelope(INTOTO_PAYLOAD_TYPE, payload, tuple(signatures)))
    assert bundle_bytes(payload, signatures) == expected
