"""Config repo fixtures: the examples repo pushed to a bare repo, and edits to it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.git import EXAMPLES, WorkRepo, make_bare

GROUPS_SHARING_PAYMENTS = {
    "groups/payments.yaml": """\
apiVersion: konorkestra.io/v1
kind: Group
metadata: {name: payments}
spec:
  configSets: [payments-common]
  policy: all-at-once
""",
    "groups/payments-eu.yaml": """\
apiVersion: konorkestra.io/v1
kind: Group
metadata: {name: payments-eu}
spec:
  configSets: [payments-common]
  policy: canary
""",
}


def payments_common(version: int, currency: str) -> str:
    return f"""\
apiVersion: konorkestra.io/v1
kind: ConfigSet
metadata: {{name: payments-common, version: {version}}}
spec:
  data:
    currency_default: {currency}
    retry: {{attempts: 3, backoff_ms: [100, 400, 1600]}}
  files:
    - files/nginx/payments.conf
"""


BROKEN_GROUP = """\
apiVersion: konorkestra.io/v1
kind: Group
metadata: {name: broken}
spec:
  configSets: [checkout-api]
  policy: no-such-policy
"""


def seeded(tmp: Path, *, push: bool = True) -> tuple[Path, WorkRepo]:
    """A bare repo and a clone holding examples/config-repo plus a second payments group."""
    bare = make_bare(tmp / "config.git")
    work = WorkRepo.clone(bare, tmp / "work")
    work.copy_tree(EXAMPLES / "config-repo")
    for rel, text in GROUPS_SHARING_PAYMENTS.items():
        work.write(rel, text)
    work.commit("initial config")
    if push:
        work.push()
    return bare, work
