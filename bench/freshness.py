"""Micro benchmark: the Center's cost per freshness statement in a fan-out (issue 17).

Usage::

    .venv/bin/python bench/freshness.py                  # 2,000 nodes, 2 Groups, 5 rounds
    .venv/bin/python bench/freshness.py --nodes 10000 --groups 5

A fan-out signs a new statement for every woken node: the same latest
Releases, another node name. Printed per statement (best of the rounds, µs):

* ``slow``: ``sign_freshness(FreshnessStatement.create(...))`` per node, as the
  Center did before the template (two canonical-JSON passes, a parse, a signature);
* ``signer``: :meth:`FreshnessSigner.freshness` for a new node each time (one
  template per fan-out, one signature per node), which is what an answer costs now;
* ``ecdsa``: the bare P-256 signature, the floor of any per-node statement.

The bytes of both paths are checked equal (with a deterministic signer) first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from konorkestra.center.agentapi.freshness import FreshnessSigner
from konorkestra.center.releases.desired import LatestRow, freshness_entries
from konorkestra.model.types import Digest, GroupName, ReleaseId, Sequence
from konorkestra.trust import FreshnessStatement, Signer
from konorkestra.trust.keys import KeyId
from konorkestra.trust.sign import sign_freshness


class _Deterministic:
    def __init__(self, signer: Signer) -> None:
        self.inner, self.public_key, self.keyid = signer, signer.public_key, KeyId(signer.keyid)

    def sign(self, data: bytes) -> bytes:
        algorithm = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
        return self.inner.private_key.sign(data, algorithm)


def per_statement_us(run: Callable[[int], None], nodes: int, rounds: int) -> float:
    best = float("inf")
    for r in range(rounds):
        t = time.perf_counter()
        run(r)
        best = min(best, time.perf_counter() - t)
    return best / nodes * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    key = Signer.generate()
    now = dt.datetime.now(dt.UTC)
    latest = [
        LatestRow(GroupName(f"group-{g}"), Sequence(7 + g), ReleaseId(f"group-{g}-{7 + g}-x"),
                  Digest("sha256:" + format(g, "x").rjust(64, "0")))
        for g in range(args.groups)
    ]  # fmt: skip
    entries = freshness_entries(latest)
    names = [f"node-{i:05d}" for i in range(args.nodes)]

    same = _Deterministic(key)
    check = FreshnessSigner([same], clock=lambda: now)
    slow = FreshnessStatement.create(node=names[0], latest=entries, now=now, ttl=check.ttl)
    assert check.freshness(names[0], latest) == sign_freshness(slow, [same]), "bytes differ"

    def slow_path(_r: int) -> None:
        for name in names:
            statement = FreshnessStatement.create(node=name, latest=entries, now=now)
            sign_freshness(statement, [key])

    def signer_path(r: int) -> None:
        # A new signer per round: every node is signed anew, as after a new Release.
        signer = FreshnessSigner([key], clock=lambda: now + dt.timedelta(seconds=r))
        for name in names:
            signer.freshness(name, latest)

    def ecdsa(_r: int) -> None:
        for name in names:
            key.sign(name.encode())

    load = os.getloadavg()
    print(f"{args.nodes} nodes, {args.groups} Groups; load average {load[0]:.2f} {load[1]:.2f}")
    for label, run in (("slow", slow_path), ("signer", signer_path), ("ecdsa", ecdsa)):
        us = per_statement_us(run, args.nodes, args.rounds)
        print(f"  {label:>6}: {us:7.1f} µs per statement", flush=True)


if __name__ == "__main__":
    main()
