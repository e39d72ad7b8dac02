"""Benchmark: sign and verify 1,000 releases (CPU time, ``time.process_time``).

Run::

    .venv/bin/python bench/trust.py [N]

Prints the CPU seconds to build N release statements, sign them (one ECDSA
P-256 release key) and verify them with one :class:`Verifier` (trust root keys
loaded once), the way the Center and an Agent do. The target is under 1 s for
N = 1,000. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

from konorkestra.model.canonical import canonical_bytes, digest_of
from konorkestra.model.release import ConfigSetRef, PolicyRef
from konorkestra.trust import (
    ReleaseStatement,
    Signer,
    Source,
    TrustRoot,
    Verifier,
    make_root,
    sign_release,
)

NOW = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)


def main(n: int) -> None:
    root_key, release_key, ts_key = Signer.generate(), Signer.generate(), Signer.generate()
    root = TrustRoot.from_bytes(
        make_root(
            root=[root_key.public_key],
            release=[release_key.public_key],
            timestamp=[ts_key.public_key],
            expires=NOW + dt.timedelta(days=365),
            signers=[root_key],
        )
    )
    blobs = [
        canonical_bytes({"kind": "ConfigSet", "metadata": {"name": f"app-{i}", "version": 1}})
        for i in range(3)
    ]
    refs = [ConfigSetRef(f"app-{i}", 1, digest_of(b), len(b)) for i, b in enumerate(blobs)]
    source = Source("config-repo", "ab" * 20, "Ana Lima <ana@example.org>", NOW)
    policy = PolicyRef("canary", "sha256:" + "cd" * 32)

    start = time.process_time()
    statements = [
        ReleaseStatement.create(
            group="checkout",
            sequence=seq,
            configsets=refs,
            policy=policy,
            source=source,
            now=NOW,
            previous=None if seq == 1 else f"checkout-{seq - 1}-{'0' * 16}",
        )
        for seq in range(1, n + 1)
    ]
    built = time.process_time()
    bundles = [sign_release(st, [release_key]) for st in statements]
    signed = time.process_time()
    verifier = Verifier(root, {}, NOW, scope={"checkout"})
    for bundle in bundles:
        verifier.verify_release(bundle)
    verified = time.process_time()

    total = verified - start
    print(
        f"{n} releases: build {built - start:.3f} s, sign {signed - built:.3f} s, "
        f"verify {verified - signed:.3f} s"
    )
    print(
        f"sign+verify {verified - built:.3f} s CPU; with statement build {total:.3f} s CPU "
        f"({total / n * 1000:.3f} ms per release)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
