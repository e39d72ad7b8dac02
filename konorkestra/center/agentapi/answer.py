"""One desired-state answer, as bytes: what the long-poll returns and a stream frame carries.

Example::

    targets, entries = api.caches(engine)
    rows = await node_rows(targets, sorted(node.groups), node.id)   # per-node LatestRows
    body = await answer(api, entries, node.id, behind(rows, have), rows, waited=0.0)

Invariants:

* The answer's JSON is ``{"node", "releases": [<piece>, ...], "freshness", "wait"}``:
  ``releases`` are the pre-encoded pieces of :class:`~konorkestra.center.agentapi.cache.EntryCache`
  (the exact signed bundle bytes, small blobs inlined), in the order given;
  ``freshness`` is the node's signed statement listing ``latest`` (every Group
  in its scope that has a Release for it), base64.
* A Release whose piece cannot be read (deleted meanwhile) is left out, never
  sent half; the agent asks again.
* Built by concatenation, not by re-serializing the pieces: one JSON encode of
  the node id and of ``wait`` per answer.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

from konorkestra.center.agentapi.api import AgentApi
from konorkestra.center.agentapi.cache import EntryCache, LatestCache
from konorkestra.center.releases.desired import GroupTargets, LatestRow


async def node_rows(
    targets: LatestCache[GroupTargets], groups: Sequence[str], node_id: str
) -> list[LatestRow]:
    """The Release each of ``groups`` should give ``node_id`` (Groups with none left out)."""
    return [row for t in await targets.get(groups) if (row := t.row_for(node_id)) is not None]


async def answer(
    api: AgentApi,
    entries: EntryCache,
    node_id: str,
    offer: Sequence[LatestRow],
    latest: list[LatestRow],
    *,
    waited: float,
) -> bytes:
    """The JSON bytes of one answer offering ``offer`` to ``node_id``."""
    pieces = [piece for r in offer if (piece := await entries.get(r.release_id)) is not None]
    freshness = base64.b64encode(api.fresh.freshness(node_id, latest))
    return b"".join(
        [
            b'{"node":', json.dumps(node_id).encode(),
            b',"releases":[', b",".join(pieces),
            b'],"freshness":"', freshness,
            b'","wait":', json.dumps(round(waited, 3)).encode(), b"}",
        ]
    )  # fmt: skip
