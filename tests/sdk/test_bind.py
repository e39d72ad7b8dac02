"""bind(): dataclass validation, live re-binding, failed acks on invalid config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

import konorkestra.sdk as sdk
from konorkestra.sdk._internal.bind import build
from konorkestra.testing.serverthread import ServerThread


@dataclass(frozen=True)
class Limits:
    max_items: int
    currency: Literal["EUR", "USD"] = "EUR"


@dataclass(frozen=True)
class Api:
    timeout_ms: int
    retries: int = 2
    ratio: float = 1.0
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    limits: Limits | None = None

    def __post_init__(self) -> None:
        if self.timeout_ms <= 0:
            raise ValueError("timeout_ms must be > 0")


def test_build_accepts_camel_case_nested_and_defaults() -> None:
    api = build(
        Api,
        {"timeoutMs": 800, "ratio": 2, "tags": ["a"], "limits": {"maxItems": 3}, "extra": 1},
        "checkout-api",
    )
    assert api == Api(timeout_ms=800, ratio=2.0, tags=["a"], limits=Limits(max_items=3))
    assert isinstance(api.ratio, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "checkout-api.timeoutMs: missing"),
        ({"timeoutMs": "800"}, "checkout-api.timeoutMs: expected int, got str"),
        ({"timeoutMs": True}, "checkout-api.timeoutMs: expected int, got bool"),
        ({"timeoutMs": 800, "tags": ["a", 1]}, r"checkout-api.tags\[1\]: expected str"),
        ({"timeoutMs": 800, "limits": {"maxItems": 1, "currency": "GBP"}}, "limits"),
        ({"timeoutMs": 0}, "timeout_ms must be > 0"),
        ([1], "expected an object"),
    ],
)
def test_build_rejects_with_a_path(data: Any, message: str) -> None:
    with pytest.raises(sdk.BindError, match=message):
        build(Api, data, "checkout-api")


def test_binding_is_live_and_keeps_the_last_valid_value(
    agent: ServerThread,
    publish: Callable[..., None],
    acks: Callable[..., list[Any]],
    wait_until: Callable[..., None],
) -> None:
    with sdk.connect(agent.server.path) as client:
        api = client.bind("checkout", "checkout-api", Api)
        assert api.value == Api(timeout_ms=800, retries=2)
        publish(agent, 2, {"checkout-api": {"timeoutMs": 900, "retries": 5}})
        wait_until(lambda: api.value.retries == 5)
        assert api.release == "checkout-2"
        publish(agent, 3, {"checkout-api": {"timeoutMs": "soon"}})
        wait_until(lambda: len(acks(agent)) == 3)
        assert acks(agent)[2] == (
            "checkout-3",
            "failed",
            "BindError: checkout-api.timeoutMs: expected int, got str 'soon'",
        )
        assert api.value.timeout_ms == 900 and api.release == "checkout-2"


def test_bind_to_invalid_current_release_raises_and_acks_failed(
    agent: ServerThread, acks: Callable[..., list[Any]], wait_until: Callable[..., None]
) -> None:
    with sdk.connect(agent.server.path) as client:
        with pytest.raises(sdk.BindError, match="no ConfigSet 'nope'"):
            client.bind("checkout", "nope", Api)
        wait_until(lambda: any(a[1] == "failed" for a in acks(agent)))
