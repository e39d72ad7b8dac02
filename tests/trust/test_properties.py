"""Property: no single-byte change to signed bytes is ever accepted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from konorkestra.trust import TrustError, TrustRoot

if TYPE_CHECKING:
    from tests.trust.conftest import World

SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


MUTATIONS = st.tuples(
    st.sampled_from(["replace", "insert", "delete"]),
    st.integers(min_value=0),
    st.integers(min_value=0, max_value=255),
)


def _apply(data: bytes, kind: str, index: int, value: int) -> bytes:
    if kind == "replace":
        if data[index] == value:
            value = (value + 1) % 256
        return data[:index] + bytes([value]) + data[index + 1 :]
    if kind == "insert":
        return data[:index] + bytes([value]) + data[index:]
    return data[:index] + data[index + 1 :]


@SETTINGS
@given(mutation=MUTATIONS)
def test_any_single_byte_mutation_of_a_release_bundle_is_rejected(
    world: World, mutation: tuple[str, int, int]
) -> None:
    bundle = world.bundle(sequence=2)
    assert world.verifier().verify_release(bundle).statement.sequence == 2
    kind, index, value = mutation
    mutated = _apply(bundle, kind, index % len(bundle), value)
    with pytest.raises(TrustError):
        world.verifier().verify_release(mutated)


@SETTINGS
@given(index=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_any_byte_replacement_in_a_freshness_bundle_is_rejected(
    world: World, index: int, value: int
) -> None:
    bundle = world.freshness([])
    mutated = _apply(bundle, "replace", index % len(bundle), value)
    with pytest.raises(TrustError):
        world.verifier().check_freshness(mutated)


@SETTINGS
@given(index=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_any_byte_replacement_in_a_trust_root_is_rejected(
    world: World, index: int, value: int
) -> None:
    mutated = _apply(world.root_bytes, "replace", index % len(world.root_bytes), value)
    with pytest.raises(TrustError):
        TrustRoot.from_bytes(mutated)


def test_every_bit_flip_of_a_release_bundle_is_rejected(world: World) -> None:
    """The exhaustive companion of the property above: all 8 x len(bundle) flips."""
    bundle = world.bundle(sequence=2, signers=world.release_keys)
    accepted = []
    for index in range(len(bundle)):
        for bit in range(8):
            mutated = bytearray(bundle)
            mutated[index] ^= 1 << bit
            try:
                world.verifier().verify_release(bytes(mutated))
            except TrustError:
                continue
            accepted.append((index, bit))
    assert accepted == []
