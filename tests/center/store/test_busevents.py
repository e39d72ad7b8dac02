"""The replicas' event codec, rule by rule (E1-E5 of ``konorkestra.center.store.busevents``)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from konorkestra.center.store import busevents
from konorkestra.center.store.busevents import (
    MAX_PAYLOAD,
    IngestAsked,
    IngestDone,
    NodeChanged,
    Released,
    Reported,
    decode,
    encode,
    from_audit,
)

WORD = st.from_regex(r"[a-z0-9][a-z0-9-]{0,40}", fullmatch=True)
COUNT = st.integers(min_value=0, max_value=2**53)
EVENTS = st.one_of(
    st.builds(Released, WORD, COUNT),
    st.builds(NodeChanged, st.from_regex(r"[0-9a-f]{16}", fullmatch=True)),
    st.builds(Reported, WORD),
    st.builds(IngestAsked, WORD, COUNT),
    st.builds(IngestDone, WORD, COUNT),
)


def test_every_stated_rule_has_a_named_test() -> None:
    rules = set(re.findall(r"^\* (E\d+) ", busevents.__doc__ or "", re.MULTILINE))
    tests = {name[5:7].upper() for name in globals() if re.match(r"test_e\d+_", name)}
    assert rules == tests == {f"E{i}" for i in range(1, 6)}


@given(WORD, EVENTS)
def test_e1_a_payload_names_its_origin_and_decodes_to_the_same_event(
    origin: str, event: busevents.Event
) -> None:
    payload = encode(origin, event)
    assert payload.split(" ")[0] == origin and len(payload) <= MAX_PAYLOAD
    assert decode(payload) == (origin, event)


@given(st.text(max_size=200))
def test_e2_anything_not_understood_decodes_to_none_and_never_raises(text: str) -> None:
    decoded = decode(text)
    if decoded is not None:  # whatever decodes, re-encodes to itself
        assert encode(*decoded) == text


def test_e2_malformed_unknown_and_oversized_payloads_are_ignored() -> None:
    bad = ["", "a1", "a1 r", "a1 r g", "a1 r g x", "a1 r g -1", "a1 r g 01", "a1 r g \u00b2",
           "a1  r g 1", "a1 z g 1", "a1 n", "a1 n x y", "a1 p", "a1 p g 1", "a1 r g " + "9" * 30,
           "a1 n " + "f" * MAX_PAYLOAD]  # fmt: skip
    for payload in bad:
        assert decode(payload) is None, payload


def test_e3_a_rollout_move_is_a_release_event_with_sequence_zero() -> None:
    assert decode("a1 r checkout 0") == ("a1", Released("checkout", 0))
    assert from_audit("rollout.wave_started", {"group": "checkout"}) == Released("checkout", 0)


def test_e4_audit_records_map_to_the_events_the_poll_fallback_delivers() -> None:
    release = {"release": "checkout-3-ab", "group": "checkout", "sequence": 3}
    assert from_audit("release.created", release) == Released("checkout", 3)
    for action in ("node.enrolled", "node.renewed", "node.revoked"):
        assert from_audit(action, {"node_id": "00ff"}) == NodeChanged("00ff")
    assert from_audit("command.rejected", {"group": "payments"}) == Released("payments", 0)
    # agent reports and records without a Group or node change nothing
    for action in ("node.release_applied", "node.release_acked", "node.enroll_refused"):
        assert from_audit(action, {"node_id": "00ff", "group": "checkout"}) is None
    assert from_audit("commit.accepted", {"sha": "ab", "releases": []}) is None
    assert from_audit("node.revoked", {"node_id": 7}) is None


def test_e5_events_are_values_so_a_second_delivery_is_the_same_event() -> None:
    assert Released("g", 1) == Released("g", 1)
    assert len({NodeChanged("n"), NodeChanged("n"), Released("g", 0), Released("g", 0)}) == 2
