"""Ours for ``bench/fanout.py``: a fleet of N enrolled nodes, cached on disk, and its Center.

Usage::

    fleet = fleet_for(Path(".cache/fanout"), 1000)       # built once, reused after
    with Stack(fleet.root) as stack:
        centers = start_centers(stack, fleet)            # the seam: one Center today
        t0 = publish(fleet)                               # a git push; monotonic t0

A fleet is ``<fleet-dir>/n<N>/``: the config repo (``config.git`` + ``work``, the
example repo with ``checkout`` on the ``all-at-once`` Policy), the Center's data
directory (``center/``: its CA, SQLite store with the N nodes), one client key
(``node.key``, shared by every node: one key saves N key generations, and the
Center issues each node its own certificate for it) and ``certs/<i>.pem``.

Invariants:

* Every node is real: a join token from ``POST /v1/join-tokens`` with ``count``
  and ``POST /v1/enroll`` with a CSR, from a running Center, exactly as
  ``konorkestra agent join`` does; the certificates are the Center's own, checked
  and authorized by it on every request. Enrollment is rate limited per source
  address (a burst of 10), so each batch of 10 enrolls from its own 127.0.2.x+.
* One run at a time per fleet (:func:`fleet_in_use`, a lock file beside it).
* ``fleet.json`` is written last: a fleet without it is rebuilt from scratch; one
  whose certificates expire within 2 h is rebuilt too (they live 168 h, the most the Center issues).
* :func:`publish` is a real publish: a new ``checkout-api`` version committed and
  pushed to the bare repo the Center watches; t0 is taken just before ``git push``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import shutil
import ssl
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from konorkestra.agent.identity import build_csr
from konorkestra.demo import ConfigRepo, DemoError, Stack, edits, examples_dir, wait_until
from konorkestra.demo.stack import CenterHandle

GROUP = "checkout"
CENTER_ARGS = ("--log-level", "warning", "--node-cert-lifetime", "168h")
PER_SOURCE = 10  # the Center's enrollment burst per source address
FRESH_FOR = dt.timedelta(hours=2)
ALL_AT_ONCE = """\
apiVersion: konorkestra.io/v1
kind: Group
metadata:
  name: checkout
spec:
  configSets: [checkout-api, checkout-flags@3]
  policy: all-at-once
"""


@dataclass(frozen=True)
class Fleet:
    root: Path
    n: int
    certs: tuple[str, ...]

    @property
    def key(self) -> Path:
        return self.root / "node.key"

    @property
    def repo(self) -> ConfigRepo:
        return ConfigRepo(self.root / "config.git", self.root / "work")


@contextlib.contextmanager
def fleet_in_use(fleet_dir: Path, n: int) -> Iterator[Fleet]:
    """:func:`fleet_for` under an exclusive lock (``n<N>.lock``) held until the run ends:
    two runs on one fleet would push to one repo and start two Centers on one data dir."""
    fleet_dir.mkdir(parents=True, exist_ok=True)
    with open(fleet_dir / f"n{n}.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise DemoError(
                f"the fleet {fleet_dir / f'n{n}'} is in use by another run (pid "
                f"{lock.read().strip() or '?'}); wait for it or pass another --fleet-dir"
            ) from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield fleet_for(fleet_dir, n)


def fleet_for(fleet_dir: Path, n: int) -> Fleet:
    """The cached fleet of ``n`` nodes under ``fleet_dir``, built first if missing or stale."""
    root = (fleet_dir / f"n{n}").resolve()
    try:
        doc = json.loads((root / "fleet.json").read_text())
        not_after = dt.datetime.fromisoformat(doc["not_after"])
        if doc["n"] == n and not_after - dt.datetime.now(dt.UTC) > FRESH_FOR:
            print(f"  fleet of {n} nodes reused from {root}", flush=True)
            return Fleet(root, n, tuple(doc["certs"]))
    except (OSError, ValueError, KeyError):
        pass
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return _build(root, n)


def _build(root: Path, n: int) -> Fleet:
    repo = ConfigRepo.create(root)
    shutil.copytree(examples_dir() / "config-repo", repo.work, dirs_exist_ok=True)
    repo.write(edits.GROUP_FILE, ALL_AT_ONCE)  # delivery, not a canary's waits
    repo.commit("The example repo, checkout on the all-at-once Policy")
    repo.push()
    key = ec.generate_private_key(ec.SECP256R1())
    (root / "node.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (root / "node.key").chmod(0o600)
    (root / "certs").mkdir()
    with Stack(root) as stack:
        [center] = start_centers(stack, Fleet(root, n, ()))
        center.wait_commit(repo.head())
        started = time.monotonic()
        tokens = _join_tokens(center, n)
        made = time.monotonic() - started
        certs = _enroll(center, tokens, build_csr(key).decode(), root / "certs")
        print(f"  fleet of {n}: join tokens in {made:.1f} s, {n} nodes enrolled in "
              f"{time.monotonic() - started - made:.1f} s (concurrent, {PER_SOURCE} per "
              f"source address)", flush=True)  # fmt: skip
    not_after = min(x509.load_pem_x509_certificate(Path(c).read_bytes()).not_valid_after_utc
                    for c in certs)  # fmt: skip
    doc = {"n": n, "not_after": not_after.isoformat(), "certs": certs}
    (root / "fleet.json").write_text(json.dumps(doc))
    return Fleet(root, n, tuple(certs))


def _join_tokens(center: CenterHandle, n: int) -> list[str]:
    headers = {"Authorization": f"Bearer {center.admin_token}"}
    tokens: list[str] = []
    while len(tokens) < n:
        count = min(10_000, n - len(tokens))
        body = {"groups": [GROUP], "ttl_seconds": 3600, "count": count}
        resp = center.http.post("/v1/join-tokens", json=body, headers=headers, timeout=300)
        resp.raise_for_status()
        tokens += [t["token"] for t in resp.json()["tokens"]]
    return tokens


def _enroll(center: CenterHandle, tokens: list[str], csr: str, out: Path) -> list[str]:
    ca = center.ca_file
    assert ca is not None, "the bench's Center serves TLS"
    verify = ssl.create_default_context(cafile=str(ca))

    def batch(b: int) -> list[str]:
        source = f"127.0.{2 + b // 250}.{1 + b % 250}"
        transport = httpx.HTTPTransport(verify=verify, local_address=source)
        paths = []
        with httpx.Client(base_url=center.url, transport=transport, timeout=120) as http:
            for i in range(b * PER_SOURCE, min(len(tokens), (b + 1) * PER_SOURCE)):
                body = {"token": tokens[i], "csr": csr, "name": f"fan-{i:05d}"}
                resp = http.post("/v1/enroll", json=body)
                resp.raise_for_status()
                path = out / f"{i:05d}.pem"
                path.write_text(resp.json()["certificate"])
                paths.append(str(path))
        return paths

    batches = range((len(tokens) + PER_SOURCE - 1) // PER_SOURCE)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return [p for paths in pool.map(batch, batches) for p in paths]


def start_centers(stack: Stack, fleet: Fleet, count: int = 1) -> list[CenterHandle]:
    """Start "the Centers" serving ``fleet``: the seam for several Centers on PostgreSQL.

    Today: one ``konorkestra center`` on its SQLite store in ``fleet.root/center``
    (``count`` must be 1). Callers use each handle's ``url``, ``ca_file`` and
    ``proc.pid`` only, so a PostgreSQL variant can return several.
    """
    if count != 1:
        raise NotImplementedError("several Centers on PostgreSQL: not built yet (issue 17)")
    return [stack.center(fleet.repo.bare, *CENTER_ARGS, timeout=120)]


def publish(fleet: Fleet) -> float:
    """Commit a new ``checkout-api`` version and push it; ``time.monotonic()`` before the push."""
    repo = fleet.repo
    text = (repo.work / edits.API_FILE).read_text()
    version = 1 + max(int(v) for v in re.findall(r"^\s+version: (\d+)$", text, re.M))
    repo.write(edits.API_FILE, edits.checkout_api(version, timeout_ms=10 + version % 900),
               append=True)  # fmt: skip
    repo.commit(f"bench: checkout-api v{version}")
    return repo.push()


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(found.group(1)) if found else -1.0


def _metrics(center: CenterHandle) -> str:
    ctx = ssl.create_default_context(cafile=str(center.ca_file))
    with urllib.request.urlopen(center.url + "/metrics", context=ctx, timeout=30) as resp:
        return str(resp.read().decode())


def parked(center: CenterHandle) -> int:
    """The Center's ``konorkestra_center_parked_requests`` gauge."""
    return int(_metric(_metrics(center), "konorkestra_center_parked_requests"))


TIMINGS = {
    "ingest": "konorkestra_center_ingest_seconds_sum",
    "rollout decisions": "konorkestra_rollout_decision_seconds_sum",
}


def timings(center: CenterHandle) -> dict[str, float]:
    """Seconds the Center has spent so far ingesting commits and deciding rollouts (its
    own histograms' sums): the difference over a publish says where its time went."""
    text = _metrics(center)
    return {label: _metric(text, name) for label, name in TIMINGS.items()}


def wait_parked(center: CenterHandle, n: int, timeout: float = 120.0) -> None:
    """Until ``n`` requests are parked in the Center (a long-poll or, once counted, a stream)."""
    wait_until(lambda: parked(center) >= n, timeout=timeout, interval=0.2,
               what=f"{n} parked requests in the Center", watch=[center.proc])  # fmt: skip
