"""Judge one commit and record the verdict: rejected with diagnostics, or accepted
with its blobs, ConfigSet versions, Group states and the Releases it causes.

Invariants:

* The verdict is the repo validator's (:func:`konorkestra.repo.validate`) with a
  :class:`~konorkestra.repo.History` built from the store's
  ``configset_versions``: every ``name@version`` the Center ever accepted keeps
  its digest forever, even across a force-push that rewrote Git history.
  :func:`judge` reaches the same verdict with one analysis per commit, shared by
  resolve and (on failure) validate, through the loader's
  :class:`~konorkestra.repo.AnalysisCache`; accepted commits therefore store no
  validator diagnostics, which is exact while the validator emits only errors.
* Destructive commits: the Groups of the previous accepted commit that this
  commit no longer defines are judged by
  :func:`konorkestra.repo.deletions.deletion_diagnostics` (rules D1–D6), with
  the enrolled node counts and the commit's ``Konorkestra-Allow-Delete``
  trailers fetched by :mod:`~konorkestra.center.ingest.destructive`. A refused
  deletion rejects the commit like any validation error; an allowed one is
  accepted with a ``group-deleted`` warning stored on the commit and a
  ``group.deleted`` audit event. Deleting a Group never touches its nodes or
  Releases: the nodes keep serving its last Release, and the API shows the
  Group as ``defined: false``.
* Every commit is audited in its own transaction with its author and its
  diagnostics count: ``commit.rejected`` with ``errors`` (and the first one),
  ``commit.accepted`` with ``warnings`` (the diagnostics stored on the commit)
  and the Releases it caused.
* Per commit, work is proportional to what changed, not to the repo: unchanged
  files are neither parsed nor checked (the cache), the store history is
  refreshed incrementally (:mod:`~konorkestra.center.ingest.published`), and the
  store is asked only about new ``name@version`` rows and their blobs. A
  version already stored has its blob and file blobs stored (foreign key, and
  same digest means same files). Group states remain one row per Group per
  accepted commit (the API serves them per commit).
* Everything about one commit is written in one transaction: the commit row,
  its blobs and versions, its group states, its Releases and their audit
  records. A crash leaves the commit unprocessed or fully processed, never half;
  a processed commit is never processed again (its sha is in ``commits``).
* A rejected commit changes nothing that is served: no blob, version, state or
  Release is written, only the commit row with its diagnostics and an audit event.
  Later commits are judged against the last *accepted* commit, so a refused
  deletion stays refused until a commit carries the trailer (or restores the Group).
* An accepted commit releases what :func:`~konorkestra.center.ingest.plan.plan_releases`
  decides (rules P1–P9: the Groups whose ConfigSet versions or Policy digest
  differ from the previous accepted commit, plus Groups never released); this
  module only fetches what the plan needs and writes it. Sequences come from
  the Releaser.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from konorkestra.center.ingest.destructive import DeletionCheck
from konorkestra.center.ingest.gitsource import CommitMeta
from konorkestra.center.ingest.plan import GroupState, StateKey, plan_releases, unchanged
from konorkestra.center.ingest.published import PublishedVersions
from konorkestra.center.ingest.snapshots import SnapshotLoader
from konorkestra.center.releases.queries import latest_accepted
from konorkestra.center.releases.signer import ReleasePlan, Releaser
from konorkestra.center.store import audit, schema
from konorkestra.center.store.engine import now, reader
from konorkestra.model.canonical import digest_of
from konorkestra.model.release import ConfigSetRef, PolicyRef, Release
from konorkestra.model.types import Digest, GroupName
from konorkestra.repo import (
    AnalysisCache,
    History,
    Resolved,
    ResolvedGroup,
    ResolveError,
    Snapshot,
    has_errors,
    resolve,
    validate,
)
from konorkestra.repo.analysis import analyze
from konorkestra.repo.diagnostics import Diagnostic

ACTOR = "center:ingest"
_CHUNK = 400


@dataclass(frozen=True)
class Outcome:
    """What happened to one commit."""

    sha: str
    status: str
    errors: int
    releases: list[Release] = field(default_factory=list)


def _state(group: ResolvedGroup) -> GroupState:
    return GroupState(
        group.name,
        tuple(
            ConfigSetRef(cs.name, cs.version, cs.digest, len(cs.blob)) for cs in group.configsets
        ),
        group.policy.name,
        group.policy_digest,
    )


def _stored_key(configsets: list[object], policy_digest: str) -> StateKey:
    """The state key of a stored ``group_states`` row (the store's edge)."""
    return StateKey.of((ConfigSetRef.from_json(c) for c in configsets), Digest(policy_digest))


def judge(
    snapshot: Snapshot, history: History, *, cache: AnalysisCache | None = None
) -> tuple[list[Diagnostic], Resolved | None]:
    """``(diagnostics, resolved)``; ``resolved`` is ``None`` exactly when there are errors.

    One analysis (through ``cache`` if given) serves both steps. The common case
    (a valid commit) is decided by :func:`resolve`, which refuses any snapshot
    with load or analysis errors, plus the validator's immutability condition (a
    ``name@version`` whose digest differs from its published one). Only when
    either fails does :func:`validate` run on the same analysis, to give the full
    diagnostics with file, line and the earlier commit.
    """
    analysis = analyze(snapshot, cache=cache)
    try:
        resolved = resolve(snapshot, analysis=analysis)
    except ResolveError:
        resolved = None
    if resolved is not None and all(
        key not in history or history[key].digest == cs.digest
        for key, cs in resolved.configsets.items()
    ):
        return [], resolved
    diagnostics = validate(snapshot, history=history, analysis=analysis)
    if not has_errors(diagnostics):  # cannot happen while resolve and validate agree
        raise RuntimeError(f"validator and resolver disagree about commit {snapshot.commit}")
    return diagnostics, None


def _group_names(snapshot: Snapshot, resolved: Resolved | None) -> set[str]:
    """The Groups a commit defines: resolved ones, or every Group document if it is broken."""
    if resolved is not None:
        return set(resolved.groups)
    return {d.name for d in snapshot.definitions if d.kind == "Group"}


def _describe(d: Diagnostic) -> str:
    where = f"{d.file}:{d.line}: " if d.file and d.line else f"{d.file}: " if d.file else ""
    return f"{where}{d.message} [{d.code}]"


class CommitProcessor:
    """Validates, resolves and records commits of one branch."""

    def __init__(
        self, engine: Engine, releaser: Releaser, loader: SnapshotLoader, *, branch: str
    ) -> None:
        self.engine, self.releaser, self.loader, self.branch = engine, releaser, loader, branch
        self.published = PublishedVersions()
        self._states: tuple[str, dict[GroupName, StateKey]] | None = None
        """(accepted sha, Group -> state key) of the last commit this processor accepted."""

    def known(self, sha: str) -> bool:
        with reader(self.engine).connect() as conn:
            found = conn.execute(
                sa.select(schema.commits.c.seq).where(schema.commits.c.sha == sha)
            ).first()
        return found is not None

    def process(self, meta: CommitMeta) -> Outcome:
        snapshot = self.loader.load(meta.sha)
        with reader(self.engine).connect() as conn:
            history = self.published.current(conn)
        diagnostics, resolved = judge(snapshot, history, cache=self.loader.cache)
        with self.engine.begin() as conn:
            previous = latest_accepted(conn)
            before = self._previous_states(conn, previous)
            deletions = DeletionCheck.fetch(
                conn, before=before, current=_group_names(snapshot, resolved), message=meta.message
            )
            diagnostics = diagnostics + deletions.diagnostics
            errors = [d for d in diagnostics if d.is_error]
            self._insert_commit(conn, meta, diagnostics, "rejected" if errors else "accepted")
            if resolved is None or errors:
                first = errors[0]
                audit.append(
                    conn,
                    ACTOR,
                    "commit.rejected",
                    {
                        "sha": meta.sha,
                        "subject": meta.subject,
                        "author": meta.author,
                        "errors": len(errors),
                        "first": _describe(first),
                    },
                )
                return Outcome(meta.sha, "rejected", len(errors))
            warnings = len(diagnostics)  # no errors here: every diagnostic left is a warning
            releases, states = self._accept(conn, meta, resolved, history, before, warnings)
            deletions.record(conn, meta)
        self._states = (meta.sha, states)  # only once the transaction has committed
        self.releaser.announce(releases)
        return Outcome(meta.sha, "accepted", 0, releases)

    def _insert_commit(
        self, conn: Connection, meta: CommitMeta, diagnostics: list[Diagnostic], status: str
    ) -> None:
        conn.execute(
            sa.insert(schema.commits).values(
                sha=meta.sha,
                parent=meta.parent,
                branch=self.branch,
                author=meta.author,
                committed_at=meta.committed_at,
                subject=meta.subject,
                status=status,
                diagnostics=[d.to_dict() for d in diagnostics],
                ingested_at=now(),
            )
        )

    def _store_blobs(self, conn: Connection, blobs: dict[str, bytes]) -> None:
        B = schema.blobs
        digests = sorted(blobs)
        have: set[str] = set()
        for i in range(0, len(digests), _CHUNK):
            part = digests[i : i + _CHUNK]
            have |= set(conn.execute(sa.select(B.c.digest).where(B.c.digest.in_(part))).scalars())
        created = now()
        rows = [
            {"digest": d, "size": len(blobs[d]), "data": blobs[d], "created_at": created}
            for d in digests
            if d not in have
        ]
        if rows:
            conn.execute(sa.insert(B), rows)

    def _existing_versions(
        self, conn: Connection, candidates: list[tuple[str, int]]
    ) -> set[tuple[str, int]]:
        """Which of ``candidates`` (``(name, version)``) are already stored (PK lookups)."""
        V = schema.configset_versions
        names = sorted({name for name, _ in candidates})
        found: set[tuple[str, int]] = set()
        for i in range(0, len(names), _CHUNK):
            part = names[i : i + _CHUNK]
            rows = conn.execute(sa.select(V.c.name, V.c.version).where(V.c.name.in_(part)))
            found |= {(r.name, r.version) for r in rows}
        return found & set(candidates)

    def _released(self, conn: Connection, names: list[GroupName]) -> set[GroupName]:
        """Which Groups of ``names`` have at least one Release (index on ``group``)."""
        R = schema.releases
        out: set[GroupName] = set()
        for i in range(0, len(names), _CHUNK):
            part = names[i : i + _CHUNK]
            out |= set(
                conn.execute(sa.select(R.c.group).where(R.c.group.in_(part)).distinct()).scalars()
            )
        return out

    def _previous_states(self, conn: Connection, previous: str | None) -> dict[GroupName, StateKey]:
        """Group -> state key at ``previous``, from memory when this processor wrote it."""
        if previous is None:
            return {}
        if self._states is not None and self._states[0] == previous:
            return self._states[1]
        G = schema.group_states
        return {
            GroupName(r.name): _stored_key(r.configsets, r.policy_digest)
            for r in conn.execute(sa.select(G).where(G.c.commit == previous))
        }

    def _accept(
        self,
        conn: Connection,
        meta: CommitMeta,
        resolved: Resolved,
        history: History,
        before: dict[GroupName, StateKey],
        warnings: int,
    ) -> tuple[list[Release], dict[GroupName, StateKey]]:
        """Store what ``resolved`` holds; release the Groups :func:`plan_releases` names.

        ``history`` is the store's as :func:`judge` saw it; versions it lacks are
        checked against the store again inside this transaction; ``before`` is
        the Group state keys of the previous accepted commit; ``warnings`` the
        number of diagnostics stored on the commit (the audit event carries it).
        Returns the Releases and the Group state keys of this commit.
        """
        V, P, G = schema.configset_versions, schema.policies, schema.group_states
        candidates = [cs for cs in resolved.configsets.values() if cs.key not in history]
        stored = self._existing_versions(conn, [(cs.name, cs.version) for cs in candidates])
        new_versions = [cs for cs in candidates if (cs.name, cs.version) not in stored]
        blobs: dict[str, bytes] = {}
        for cs in new_versions:
            blobs[cs.digest] = cs.blob
            for content in cs.files.values():
                blobs[digest_of(content)] = content
        self._store_blobs(conn, blobs)
        created = now()
        fresh = [
            {
                "name": cs.name,
                "version": cs.version,
                "digest": cs.digest,
                "commit": meta.sha,
                "created_at": created,
            }
            for cs in new_versions
        ]
        if fresh:
            conn.execute(sa.insert(V), fresh)
        policies = {g.policy.name: g for g in resolved.groups.values()}
        if policies:
            conn.execute(
                sa.insert(P),
                [
                    {
                        "commit": meta.sha,
                        "name": n,
                        "digest": g.policy_digest,
                        "body": g.policy.canonical_dict(),
                    }
                    for n, g in sorted(policies.items())
                ],
            )
        states = [_state(group) for _, group in sorted(resolved.groups.items())]
        if states:
            conn.execute(
                sa.insert(G),
                [
                    {
                        "commit": meta.sha,
                        "name": s.group,
                        "policy": s.policy,
                        "policy_digest": s.policy_digest,
                        "configsets": [c.to_json() for c in s.configsets],
                    }
                    for s in states
                ],
            )
        released = self._released(conn, unchanged(before, states))
        releases: list[Release] = []
        for state in plan_releases(before, states, released):
            plan = ReleasePlan(
                group=state.group,
                members=state.configsets,
                policy=PolicyRef(state.policy, state.policy_digest),
                policy_body=resolved.groups[state.group].policy.canonical_dict(),
                source_commit=meta.sha,
                author=meta.author,
                committed_at=meta.committed_at,
                created_by=ACTOR,
                origin="ingest",
            )
            releases.append(self.releaser.insert(conn, plan))
        audit.append(
            conn,
            ACTOR,
            "commit.accepted",
            {
                "sha": meta.sha,
                "subject": meta.subject,
                "author": meta.author,
                "warnings": warnings,
                "releases": [r.id for r in releases],
            },
        )
        return releases, {s.group: s.key for s in states}
