"""Replay the conformance vectors from the SDK side, where they apply.

The SDK hides the wire, so instead of matching lines this checks what an
application would observe: each ``get`` in a vector must come out of
``get_config`` with the same release, sequence, digest, stale flag and config
(or raise ``NotFoundError``); each ``publish`` must reach a watcher exactly once
and in order; each ``set_stale`` must show in ``get_config().stale``.
Vectors about malformed bytes and server options have no SDK equivalent.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import konorkestra.sdk as sdk
from konorkestra.testing.memstate import InMemoryState, state_part
from konorkestra.testing.serverthread import ServerThread

VECTORS = Path(__file__).parents[1] / "vectors"
_spec = importlib.util.spec_from_file_location("konorkestra_vector_replay", VECTORS / "replay.py")
assert _spec is not None and _spec.loader is not None
replay_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(replay_mod)

APPLICABLE = [
    v
    for v in replay_mod.load_vectors(VECTORS)
    if "server" not in v
    and any(s.get("send", {}).get("op") == "get" or "publish" in s for s in v["steps"])
]


def _gets(vector: dict[str, Any]) -> dict[int, tuple[str, dict[str, Any]]]:
    """Step index of each get → (group, the response the vector expects)."""
    pending: dict[Any, tuple[int, str]] = {}
    out: dict[int, tuple[str, dict[str, Any]]] = {}
    for i, step in enumerate(vector["steps"]):
        send = step.get("send", {})
        if send.get("op") == "get" and isinstance(send.get("group"), str) and "id" in send:
            pending[send["id"]] = (i, send["group"])
        expect = step.get("expect", {})
        if "id" in expect and expect["id"] in pending:
            index, group = pending.pop(expect["id"])
            out[index] = (group, expect)
    return out


def _observed(cfg: sdk.Config) -> dict[str, Any]:
    return {
        "ok": True,
        "group": cfg.group,
        "release": cfg.release,
        "sequence": cfg.sequence,
        "digest": cfg.digest,
        "stale": cfg.stale,
        "config": cfg.to_dict(),
    }


@pytest.mark.parametrize("vector", APPLICABLE, ids=[v["name"] for v in APPLICABLE])
def test_vector_through_the_sdk(
    vector: dict[str, Any], tmp_path: Path, recorder: Any, wait_until: Callable[..., None]
) -> None:
    groups, _ = state_part(vector)
    gets = _gets(vector)
    with (
        ServerThread(InMemoryState.from_json(groups), tmp_path / "a.sock") as srv,
        sdk.connect(srv.server.path) as client,
    ):
        watched: dict[str, Any] = {}
        published: dict[str, list[int]] = {}
        for group in {s["publish"]["group"] for s in vector["steps"] if "publish" in s}:
            watched[group] = recorder()
            client.watch(group, watched[group])
        for index, step in enumerate(vector["steps"]):
            if index in gets:
                group, expected = gets[index]
                if expected.get("ok") is False:
                    assert expected["error"]["code"] == "not_found"
                    with pytest.raises(sdk.NotFoundError):
                        client.get_config(group)
                    continue
                subset = {k: v for k, v in expected.items() if k != "id"}
                seq = subset["sequence"]
                wait_until(lambda g=group, s=seq: client.get_config(g).sequence >= s)
                why = replay_mod.mismatch(subset, _observed(client.get_config(group)))
                assert why is None, f"{vector['name']} step {index}: {why}"
            elif "publish" in step:
                body = step["publish"]
                srv.apply(step)
                published.setdefault(body["group"], []).append(body["sequence"])
                rec = watched[body["group"]]
                rec.wait_for(len(published[body["group"]]))
                assert [new for new, _ in rec.calls] == published[body["group"]]
                cfg = client.get_config(body["group"])
                assert (cfg.release, cfg.to_dict()) == (body["release"], body["config"])
            elif "set_stale" in step:
                body = step["set_stale"]
                srv.apply(step)
                wait_until(lambda b=body: client.get_config(b["group"]).stale is b["stale"])
