"""The config repo ``konorctl plan`` tests share: examples/config-repo and a PR changing two Groups.

Example::

    repo = seeded(tmp)                       # bare + work clone, fast Policies, pushed
    sha = open_pr(repo)                      # branch "pr": checkout-api v3, payments-common v2
    normalise(markdown)                      # shas, pids and per-run node order replaced

Invariant: the PR changes exactly two ConfigSets in two Groups (``checkout``
and ``payments``) and nothing else, so exactly those two Groups would get a
new Release.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from konorkestra.demo import ConfigRepo, edits
from konorkestra.demo.gitrepo import git
from konorkestra.demo.stack import examples_dir

PAYMENTS_V2 = """\
---
apiVersion: konorkestra.io/v1
kind: ConfigSet
metadata:
  name: payments-common
  version: 2
  labels: {team: payments}
spec:
  data:
    currency_default: EUR
    retry:
      attempts: 5
      backoff_ms: [100, 400, 1600]
    fraud_check: {enabled: true, score_threshold: 0.9}
  files:
    - files/nginx/payments.conf
"""


def fast_canary(approval: str = "manual") -> str:
    """10 % / 50 % / 100 %, bakes of 1 s, guards on the SDK acks (as tests/e2e use)."""
    return edits.canary_policy(((10, "1s"), (50, "1s"), (100, None)), approval=approval)


def seeded(root: Path) -> ConfigRepo:
    """examples/config-repo with the fast canary Policy, in one commit pushed to main
    (one commit: a second one would make a second, manually approved, Release)."""
    seed = root / "seed"
    shutil.copytree(examples_dir() / "config-repo", seed)
    (seed / edits.POLICY_FILE).write_text(fast_canary())
    repo = ConfigRepo.create(root, seed=seed)
    repo.push()
    return repo


def pr_edits(repo: ConfigRepo) -> None:
    """checkout-api v3 (timeout 650 ms) and payments-common v2 pinned by its Group."""
    repo.write(edits.API_FILE, edits.checkout_api(3, timeout_ms=650), append=True)
    repo.write("configsets/payments-common.yaml", PAYMENTS_V2, append=True)
    group = (repo.work / "groups/payments.yaml").read_text()
    repo.write("groups/payments.yaml", group.replace("payments-common@1", "payments-common@2"))


def open_pr(repo: ConfigRepo) -> str:
    """Branch ``pr`` off main with :func:`pr_edits` committed; back on ``pr``; its sha."""
    git(repo.work, "checkout", "--quiet", "-b", "pr")
    pr_edits(repo)
    return repo.commit("PR: checkout timeout 650 ms, payments retries 5")


def normalise(markdown: str) -> str:
    """Replace what changes per run: commit shas, pids, and node names (by first
    appearance within each Group's section, since wave order hangs on node ids)."""
    text = re.sub(r"\b[0-9a-f]{12}\b", "<sha>", markdown)
    text = re.sub(r"pid \d+", "pid <pid>", text)
    sections = re.split(r"(?m)^(?=### )", text)
    out = []
    for section in sections:
        seen: dict[str, str] = {}

        def name(m: re.Match[str], seen: dict[str, str] = seen) -> str:
            return seen.setdefault(m[0], f"node-#{len(seen) + 1}")

        out.append(re.sub(r"\bnode-\d\d\b", name, section))
    return "".join(out)
