"""Benchmark B5: verify + commit of a 100 KB release on the agent (real fsync).

Usage::

    .venv/bin/python bench/apply.py [--n 200] [--size 100000] [--dir PATH]
                                    [--schema {simple,realistic}]

Each iteration takes a release signed in advance (ECDSA P-256 DSSE / Sigstore
bundle from ``konorkestra.trust``), verifies it against the trust root and the
store's high-water mark, then commits it to an ``AgentStore`` with real fsyncs.
Prints p50/p99/max of verify, commit and their sum, and of the commit's phases
(``AgentStore.timings``, docs/adr/0005-one-round-trip-per-step.md):

* prepare  -- check digests, names and paths, parse the ConfigSet, render files
* validate -- JSON Schema check of the data (before anything is written)
* stage    -- write blob temps, STAGED record, release dir; fsync round trip 1
* place    -- rename blobs and the release dir into place; fsync round trip 2
* flip     -- pointer symlink + rename, COMMITTED record; fsync round trip 3
* finish   -- high-water mirror file, GC of releases beyond keep=5

``--schema`` picks the ConfigSet's ``spec.schema``: ``simple`` is one
``additionalProperties: {type: string}`` over flat string values; ``realistic``
(the default) is a map of service entries, each checked like
``examples/config-repo/schemas/checkout-api.schema.json`` (``required``,
``minimum``/``maximum``, ``pattern``, ``enum``, ``items``, ``format``).

Target: p99 < 10 ms (research/perf_aesthetics B5). Without ``konorkestra.trust``
it times commit alone and says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from konorkestra.agent.heap import settle_heap
from konorkestra.agent.store import AgentStore, StagedRelease, validate_schemas
from konorkestra.model.canonical import canonical_bytes, digest_of

GROUP = "checkout"
SIMPLE = {"type": "object", "additionalProperties": {"type": "string"}}
ENTRY = {
    "type": "object",
    "required": ["listen_port", "timeout_ms", "mode", "upstreams"],
    "additionalProperties": False,
    "properties": {
        "listen_port": {"type": "integer", "minimum": 1024, "maximum": 65535},
        "timeout_ms": {"type": "integer", "minimum": 10, "maximum": 30000},
        "mode": {"enum": ["fast", "safe", "off"]},
        "owner": {"type": "string", "format": "email"},
        "upstreams": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "weight"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
                    "weight": {"type": "integer", "minimum": 0, "maximum": 100},
                },
            },
        },
    },
}
REALISTIC = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "propertyNames": {"pattern": "^[a-z][a-z0-9-]*$"},
    "additionalProperties": ENTRY,
}
SCHEMAS = {"simple": SIMPLE, "realistic": REALISTIC}


def configset_data(seq: int, size: int, kind: str) -> dict[str, Any]:
    """About ``size`` bytes of data for schema ``kind``, changing with ``seq``."""
    if kind == "simple":
        return {f"key-{i:05d}": f"value {seq} {i} " + "x" * 40 for i in range(size // 64)}
    return {
        f"svc-{i:04d}": {
            "listen_port": 1024 + i,
            "timeout_ms": 100 + seq,
            "mode": ("fast", "safe", "off")[i % 3],
            "owner": f"team-{i % 7}@example.org",
            "upstreams": [{"name": f"up-{i}-{j}", "weight": 50} for j in range(2)],
        }
        for i in range(size // 170)
    }


def configset_blob(seq: int, size: int, kind: str) -> bytes:
    """A ConfigSet of about ``size`` bytes whose data changes with ``seq``."""
    return canonical_bytes(
        {
            "apiVersion": "konorkestra.io/v1",
            "kind": "ConfigSet",
            "metadata": {"name": "checkout-api", "version": seq},
            "spec": {"data": configset_data(seq, size, kind), "schema": SCHEMAS[kind]},
        }
    )


Signed = tuple[bytes, bytes]  # (bundle, configset blob)


def make_signed(
    n: int, size: int, kind: str
) -> tuple[list[Signed], Callable[[bytes, bytes], Any] | None]:
    """Sign ``n`` releases; return them and a verify function (``None`` without trust)."""
    blobs = [configset_blob(seq, size, kind) for seq in range(1, n + 1)]
    try:
        from konorkestra import trust
        from konorkestra.model.release import ConfigSetRef, PolicyRef
    except ImportError:
        return [(canonical_bytes({"sequence": i + 1}), b) for i, b in enumerate(blobs)], None
    now = dt.datetime.now(dt.UTC)
    root_key, release_key, ts_key = (trust.Signer.generate() for _ in range(3))
    root = trust.TrustRoot.from_bytes(
        trust.make_root(
            root=[root_key.public_key],
            release=[release_key.public_key],
            timestamp=[ts_key.public_key],
            expires=now + dt.timedelta(days=365),
            signers=[root_key],
        )
    )
    signed, previous = [], None
    for seq, blob in enumerate(blobs, 1):
        statement = trust.ReleaseStatement.create(
            group=GROUP,
            sequence=seq,
            configsets=[ConfigSetRef("checkout-api", seq, digest_of(blob), len(blob))],
            policy=PolicyRef("canary", "sha256:" + "cd" * 32),
            source=trust.Source("config-repo", "0" * 40, "Bench <bench@example.org>", now),
            now=now,
            previous=previous,
        )
        previous = statement.release_id()
        signed.append((trust.sign_release(statement, [release_key]), blob))
    verifier = trust.Verifier(root, {}, now, scope={GROUP})

    def verify(bundle: bytes, blob: bytes) -> Any:
        return verifier.verify_release(bundle, {digest_of(blob): blob})

    return signed, verify


def disk_baseline(directory: Path, n: int = 100) -> tuple[float, float]:
    """p50/p99 of a 4 KiB write + fsync in ``directory``: context for the numbers."""
    times = []
    for i in range(n):
        path = directory / f"probe-{i}"
        t0 = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"x" * 4096)
        os.fsync(fd)
        os.close(fd)
        times.append((time.perf_counter() - t0) * 1e3)
        path.unlink()
    return statistics.median(times), pct(times, 99)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--dir", type=Path, default=None, help="data dir (default: a temp dir)")
    ap.add_argument(
        "--schema", choices=sorted(SCHEMAS), default="realistic", help="the ConfigSet's schema"
    )
    ap.add_argument(
        "--no-validate", action="store_true", help="skip the JSON Schema check of the data"
    )
    args = ap.parse_args()
    signed, verify = make_signed(args.n, args.size, args.schema)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        fsync_p50, fsync_p99 = disk_baseline(Path(tmp))
        store = AgentStore.open(Path(tmp) / "agent")
        validate = None if args.no_validate else validate_schemas
        settle_heap()  # as `konorkestra agent run` does once it has started
        t_verify, t_commit = [], []
        phases: dict[str, list[float]] = {}
        for seq, (bundle, blob) in enumerate(signed, 1):
            t0 = time.perf_counter()
            if verify is not None:
                v = verify(bundle, blob)
                rid, rdigest = v.release_id, v.statement_digest
                refs = v.statement.configsets
            else:
                rid, rdigest = f"{GROUP}-{seq}", digest_of(bundle)
                refs = (("checkout-api", seq, digest_of(blob)),)
            t1 = time.perf_counter()
            staged = StagedRelease(GROUP, seq, rid, rdigest, bundle, refs, {digest_of(blob): blob})
            store.commit(staged, validate=validate)
            t2 = time.perf_counter()
            t_verify.append((t1 - t0) * 1e3)
            t_commit.append((t2 - t1) * 1e3)
            for phase, secs in store.timings.items():
                phases.setdefault(phase, []).append(secs * 1e3)
        store.close()
    total = [a + b for a, b in zip(t_verify, t_commit, strict=True)]
    print(f"B5 agent apply: {args.n} releases, ConfigSet blob {len(signed[0][1])} bytes, fsync on")
    print(f"  this disk: 4 KiB write+fsync p50 {fsync_p50:.2f} ms, p99 {fsync_p99:.2f} ms")
    print(
        "  schema validation: "
        + ("off" if args.no_validate else f"on, schema {args.schema!r}")
        + f"; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    if verify is None:
        print("verify: konorkestra.trust not available -- timing commit alone")
    rows = [(f"  {name}", vals) for name, vals in phases.items()]
    rows += [("commit", t_commit), ("verify+commit", total)]
    if verify is not None:
        rows.insert(0, ("verify (ECDSA P-256)", t_verify))
    for name, vals in rows:
        print(
            f"  {name:22s} p50 {statistics.median(vals):6.2f} ms   p99 {pct(vals, 99):6.2f} ms"
            f"   max {max(vals):6.2f} ms"
        )
    p99 = pct(total, 99)
    print(f"  target p99 < 10 ms: {'met' if p99 < 10 else 'MISSED'} ({p99:.2f} ms)")


if __name__ == "__main__":
    main()
