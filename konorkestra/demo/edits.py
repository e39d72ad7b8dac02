"""The config changes the demo and the end-to-end tests push (YAML appended to the example repo).

Each is a new ConfigSet *version* appended to an existing file, because
``name@version`` is immutable: changing content means a new version.

* :func:`checkout_api` — a valid ``checkout-api`` version (the Group takes the
  highest version, so it is released);
* ``checkout_api(version, timeout_ms=5)`` — violates the schema's
  ``minimum: 10``: the Center refuses the commit (``data-schema``);
* :func:`checkout_flags` + :func:`checkout_group` — a ``checkout-flags`` version
  the sample app refuses to apply when ``fail_reload`` is set (its demo trigger
  ``failBadReload``), pinned in the ``checkout`` Group;
* :func:`shorten_bakes` — a Policy (the example's ``policies/canary.yaml``)
  with its bakes shortened for the demo; steps, guards, ``onFailure`` and
  ``approval`` stay as written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

API_FILE = "configsets/checkout-api.yaml"
FLAGS_FILE = "configsets/checkout-flags.yaml"
GROUP_FILE = "groups/checkout.yaml"
POLICY_FILE = "policies/canary.yaml"


def checkout_api(version: int, *, timeout_ms: int, max_connections: int = 512) -> str:
    return f"""\
---
apiVersion: konorkestra.io/v1
kind: ConfigSet
metadata:
  name: checkout-api
  version: {version}
  labels:
    team: checkout
spec:
  schema:
    $ref: schemas/checkout-api.schema.json
  data:
    listen_port: 8080
    timeout_ms: {timeout_ms}
    max_connections: {max_connections}
    upstreams:
      - name: inventory
        url: http://inventory.internal:9000
      - name: pricing
        url: http://pricing-v2.internal:9000
"""


def checkout_flags(version: int, *, fail_reload: bool = False, gift_cards: bool = True) -> str:
    trigger = ", failBadReload: true" if fail_reload else ""
    gifts = str(gift_cards).lower()
    return f"""\
---
apiVersion: konorkestra.io/v1
kind: ConfigSet
metadata:
  name: checkout-flags
  version: {version}
spec:
  schema:
    type: object
    additionalProperties: {{type: boolean}}
  data: {{one_click_buy: true, new_tax_engine: false, gift_cards: {gifts}{trigger}}}
"""


def checkout_group(flags_version: int, *, policy: str = "canary") -> str:
    return f"""\
apiVersion: konorkestra.io/v1
kind: Group
metadata:
  name: checkout
spec:
  configSets:
    - checkout-api
    - checkout-flags@{flags_version}
  policy: {policy}
"""


ACK_GUARDS: tuple[tuple[str, float], ...] = (("failed_acks", 0), ("ack_success_rate", 1))
"""The guards that judge each process's reload (SDK acks): what rollout tests watch."""


def canary_policy(
    steps: Sequence[tuple[int, str | None]],
    *,
    approval: str = "auto",
    guards: Sequence[tuple[str, float]] = ACK_GUARDS,
    on_failure: str = "rollback",
) -> str:
    """A ``canary`` Policy document with ``steps`` as ``(percent, bake)`` (``None``: no
    bake), for runs that need bakes of seconds instead of the example's minutes."""
    lines = ["apiVersion: konorkestra.io/v1", "kind: Policy", "metadata:", "  name: canary",
             "spec:", "  strategy: canary", "  steps:"]  # fmt: skip
    for percent, bake in steps:
        bake_part = "" if bake is None else f", bake: {bake}"
        lines.append(f"    - {{percent: {percent}{bake_part}}}")
    if guards:
        lines.append("  guards:")
        lines += [f"    - {{signal: {sig}, threshold: {limit:g}}}" for sig, limit in guards]
    lines += [f"  onFailure: {on_failure}", f"  approval: {approval}"]
    return "\n".join(lines) + "\n"


def all_at_once(group_yaml: str) -> str:
    """``group_yaml`` (the example checkout Group) on the all-at-once Policy instead of the
    canary: for runs about delivery or SDKs, where a canary's waits or its automatic
    rollback of a failed reload are not the subject."""
    if "policy: canary" not in group_yaml:
        raise ValueError("the checkout Group no longer names the canary Policy")
    return group_yaml.replace("policy: canary", "policy: all-at-once")


def shorten_bakes(policy: str, bake: str) -> tuple[str, list[str]]:
    """``policy`` (a Policy's YAML) with every step's ``bake:`` set to ``bake``; the old bakes.

    Everything else (steps, guards, ``onFailure``, ``approval``) stays as written.
    """
    pattern = re.compile(r"(\bbake:\s*)([0-9]+[smhd]?)")
    old = [m.group(2) for m in pattern.finditer(policy)]
    return pattern.sub(lambda m: m.group(1) + bake, policy), old
