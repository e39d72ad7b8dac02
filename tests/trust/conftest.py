"""A small real world for trust tests: real keys, a signed root, real ConfigSet blobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from konorkestra.model.canonical import canonical_bytes, digest_of
from konorkestra.model.release import ConfigSetRef, PolicyRef
from konorkestra.trust import (
    FreshnessStatement,
    HighWaterMark,
    LatestRelease,
    ReleaseStatement,
    Signer,
    SigningKey,
    Source,
    TrustRoot,
    Verifier,
    make_root,
    sign_freshness,
    sign_release,
)

NOW = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
COMMIT = "3f2a9c0d1e7b4a55" * 2 + "0123abcd"


def configset_blob(name: str, version: int, data: dict[str, Any]) -> bytes:
    """The canonical ConfigSet blob per docs/contributing/contracts.md."""
    return canonical_bytes(
        {
            "apiVersion": "konorkestra.io/v1",
            "kind": "ConfigSet",
            "metadata": {"name": name, "version": version},
            "spec": {"data": data},
        }
    )


@dataclass
class World:
    """Keys, a v1 trust root, blobs and factories for statements and bundles."""

    root_keys: list[Signer] = field(default_factory=lambda: [Signer.generate()])
    release_keys: list[Signer] = field(default_factory=lambda: [Signer.generate()])
    timestamp_keys: list[Signer] = field(default_factory=lambda: [Signer.generate()])
    thresholds: dict[str, int] = field(default_factory=dict)
    now: dt.datetime = NOW

    def __post_init__(self) -> None:
        self.root_bytes = make_root(
            root=[k.public_key for k in self.root_keys],
            release=[k.public_key for k in self.release_keys],
            timestamp=[k.public_key for k in self.timestamp_keys],
            expires=self.now + dt.timedelta(days=365),
            signers=self.root_keys,
            thresholds=self.thresholds,
        )
        self.trust_root = TrustRoot.from_bytes(self.root_bytes)
        self.blobs = {
            "checkout-api": configset_blob("checkout-api", 3, {"timeout_ms": 250}),
            "checkout-flags": configset_blob("checkout-flags", 1, {"new_cart": True}),
        }

    configset_blob = staticmethod(configset_blob)

    @property
    def release_key(self) -> Signer:
        return self.release_keys[0]

    def blob_map(self) -> dict[str, bytes]:
        return {digest_of(b): b for b in self.blobs.values()}

    def statement(
        self,
        *,
        group: str = "checkout",
        sequence: int = 1,
        blobs: dict[str, bytes] | None = None,
        ttl: dt.timedelta = dt.timedelta(days=30),
        now: dt.datetime | None = None,
    ) -> ReleaseStatement:
        blobs = self.blobs if blobs is None else blobs
        versions = {"checkout-api": 3, "checkout-flags": 1}
        return ReleaseStatement.create(
            group=group,
            sequence=sequence,
            configsets=[
                ConfigSetRef(name, versions.get(name, 1), digest_of(b), len(b))
                for name, b in blobs.items()
            ],
            policy=PolicyRef("canary", "sha256:" + "cd" * 32),
            source=Source("config-repo", COMMIT, "Ana Lima <ana@example.org>", self.now),
            now=now or self.now,
            ttl=ttl,
            previous=None if sequence == 1 else f"{group}-{sequence - 1}-{'0' * 16}",
        )

    def bundle(self, signers: Sequence[SigningKey] | None = None, **kwargs: Any) -> bytes:
        return sign_release(self.statement(**kwargs), signers or [self.release_key])

    def freshness(
        self,
        latest: Sequence[LatestRelease],
        *,
        node: str = "node-01",
        now: dt.datetime | None = None,
        signers: Sequence[SigningKey] | None = None,
    ) -> bytes:
        fs = FreshnessStatement.create(node=node, latest=latest, now=now or self.now)
        return sign_freshness(fs, signers or [self.timestamp_keys[0]])

    def verifier(self, marks: dict[str, HighWaterMark] | None = None, **kwargs: Any) -> Verifier:
        kwargs.setdefault("scope", {"checkout", "search"})
        return Verifier(self.trust_root, marks or {}, kwargs.pop("now", self.now), **kwargs)


@pytest.fixture
def make_world() -> type[World]:
    """The :class:`World` class, for tests that need unusual keys or thresholds."""
    return World


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def world2() -> World:
    """Release threshold 2 of 3."""
    return World(release_keys=[Signer.generate() for _ in range(3)], thresholds={"release": 2})
