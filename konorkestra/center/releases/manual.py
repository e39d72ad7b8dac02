"""Releases by hand: move a Group to ConfigSet versions from any accepted commit.

This is how an operator rolls back: ``POST /v1/releases`` with
``{"group": "checkout", "configsets": ["checkout-api@2"], "strategy": "all-at-once"}``
creates a *new* Release (next sequence) pointing at the older content.

Invariants:

* Only versions recorded from an *accepted* commit can be released; their blobs
  are in the store, so what is signed can always be served.
* The Group must be defined in the latest accepted commit; every named
  ConfigSet must be one of its members. Members not named keep the version of
  the group's latest Release.
* The Policy is the group's Policy as of the latest accepted commit;
  ``strategy`` overrides its strategy for this Release only (``all-at-once``
  also collapses the steps to one 100% step), which changes the policy digest
  the Release carries.
* A request that would repeat the latest Release exactly is a conflict.
* Everything is read, checked, signed and written in one transaction.
"""

from __future__ import annotations

import copy

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from konorkestra.center.app.errors import ApiError, conflict, invalid, not_found
from konorkestra.center.releases.queries import latest_accepted
from konorkestra.center.releases.rows import configsets_from_json
from konorkestra.center.releases.signer import ReleasePlan, Releaser
from konorkestra.center.store import schema
from konorkestra.center.store.engine import utc
from konorkestra.model.canonical import digest_value
from konorkestra.model.definitions import ConfigSetSelector, DefinitionError
from konorkestra.model.release import ConfigSetRef, PolicyRef, Release
from konorkestra.model.types import ConfigSetName, Digest, GroupName, JsonObject, PolicyName

STRATEGIES = ("all-at-once", "canary", "linear")


def parse_refs(values: object) -> list[ConfigSetSelector]:
    """``["name@version", ...]`` -> selectors with versions; a 422 :class:`ApiError` otherwise."""
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise invalid("'configsets' must be a non-empty list of \"name@version\" strings")
    refs = []
    for text in values:
        try:
            ref = ConfigSetSelector.parse(text)
        except DefinitionError as exc:
            raise invalid(str(exc), field="configsets") from None
        if ref.version is None:
            raise invalid(f"{text!r}: give an explicit version, name@version", field="configsets")
        refs.append(ref)
    names = [r.name for r in refs]
    if len(set(names)) != len(names):
        raise invalid("each ConfigSet may appear once", field="configsets")
    return refs


def override_strategy(body: JsonObject, strategy: str) -> JsonObject:
    """A copy of the Policy's canonical form ``body`` with ``strategy`` (and, for
    ``all-at-once``, one 100% step)."""
    out = copy.deepcopy(body)
    out["spec"]["strategy"] = strategy
    if strategy == "all-at-once":
        out["spec"]["steps"] = [{"percent": 100, "bake": "0s"}]
    return out


def create_manual(
    engine: Engine,
    releaser: Releaser,
    *,
    group: str,
    refs: list[ConfigSetSelector],
    strategy: str | None,
    reason: str | None,
    actor: str,
) -> Release:
    """Create the Release; raises :class:`ApiError` (404/409/422) when it cannot."""
    if strategy is not None and strategy not in STRATEGIES:
        raise invalid(f"'strategy' must be one of {', '.join(STRATEGIES)}", field="strategy")
    C, G, P, V, B = (
        schema.commits,
        schema.group_states,
        schema.policies,
        schema.configset_versions,
        schema.blobs,
    )
    with engine.begin() as conn:
        sha = latest_accepted(conn)
        if sha is None:
            raise conflict("no commit has been accepted yet; nothing can be released")
        state = conn.execute(sa.select(G).where(G.c.commit == sha, G.c.name == group)).first()
        if state is None:
            raise not_found(f"group {group!r} is not defined in the latest accepted commit")
        members_now = {c.name: c for c in configsets_from_json(state._mapping["configsets"])}
        latest = releaser.latest(conn, group)
        current = {c.name: c for c in (latest.configsets if latest else members_now.values())}
        chosen: dict[str, ConfigSetRef] = {}
        for ref in refs:
            if ref.name not in members_now:
                raise invalid(
                    f"{ref.name!r} is not a ConfigSet of group {group!r}",
                    members=sorted(members_now),
                )
            row = conn.execute(
                sa.select(V.c.digest, B.c.size)
                .join(B, B.c.digest == V.c.digest)
                .where(V.c.name == ref.name, V.c.version == ref.version)
            ).first()
            if row is None:
                raise not_found(f"{ref} was never part of an accepted commit")
            chosen[ref.name] = ConfigSetRef(
                ConfigSetName(ref.name), int(ref.version or 0), Digest(row.digest), int(row.size)
            )
        for name in members_now:
            if name not in chosen:
                chosen[name] = current.get(name) or members_now[name]
        pol = conn.execute(
            sa.select(P).where(P.c.commit == sha, P.c.name == state._mapping["policy"])
        ).first()
        if pol is None:  # group_states and policies are written together
            raise ApiError(500, "the store lacks the group's policy", code="internal")
        body = dict(pol._mapping["body"])
        if strategy is not None:
            body = override_strategy(body, strategy)
        policy = PolicyRef(
            PolicyName(pol._mapping["name"]), digest_value(body), str(body["spec"]["strategy"])
        )
        commit = conn.execute(sa.select(C).where(C.c.sha == sha)).one()._mapping
        plan = ReleasePlan(
            group=GroupName(group),
            members=tuple(chosen[n] for n in sorted(chosen)),
            policy=policy,
            policy_body=body,
            source_commit=sha,
            author=actor,
            committed_at=utc(commit["committed_at"]) or utc(commit["ingested_at"]),  # type: ignore[arg-type]
            created_by=actor,
            origin="manual",
            reason=reason,
        )
        if latest is not None and plan.same_content(latest):
            raise conflict(
                f"group {group!r} is already at exactly this content (release {latest.id})",
                release=latest.id,
            )
        return releaser.insert(conn, plan)
