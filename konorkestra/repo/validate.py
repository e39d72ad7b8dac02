"""``validate``: every diagnostic for one snapshot, optionally against history.

Example::

    from konorkestra.repo import history_before, load_commit, validate
    diagnostics = validate(load_commit(repo, "HEAD"), history=history_before(repo, "HEAD"))
    if not diagnostics: ...

Invariants:

* The result holds load, schema, semantic and (with ``history``) immutability
  diagnostics, sorted by file, line, column and code; it is empty exactly when
  the snapshot is fit to release.
* Immutability: a ``name@version`` whose digest differs from the one in
  ``history`` is an ``immutable-version`` error naming the earlier commit.
* Passing ``analysis`` (of this very snapshot) or a ``cache`` never changes the
  result; it only avoids recomputing what is known.
"""

from __future__ import annotations

from konorkestra.repo.analysis import Analysis, analyze
from konorkestra.repo.cache import AnalysisCache
from konorkestra.repo.diagnostics import Diagnostic
from konorkestra.repo.history import History
from konorkestra.repo.loader import Snapshot


def immutability(analysis: Analysis, history: History) -> list[Diagnostic]:
    """Diagnostics for ConfigSets whose content changed without a new version."""
    out: list[Diagnostic] = []
    for key, built in analysis.configsets.items():
        published = history.get(key)
        if built.configset is None or published is None:
            continue
        if built.configset.digest() == published.digest:
            continue
        name = built.configset.name
        used = [
            int(k.rsplit("@", 1)[1])
            for k in (*history, *analysis.configsets)
            if k.rsplit("@", 1)[0] == name
        ]
        defn = analysis.configset_defs[key]
        out.append(
            Diagnostic.error(
                "immutable-version",
                f"{key} changed without a version bump: it was first published in commit "
                f"{published.short} ({published.subject!r}) with different content",
                hint=f"set metadata.version to {max(used) + 1}, or revert the change",
                **defn.where(("metadata", "version")),
            )
        )
    return out


def validate(
    snapshot: Snapshot,
    *,
    history: History | None = None,
    analysis: Analysis | None = None,
    cache: AnalysisCache | None = None,
) -> list[Diagnostic]:
    """All diagnostics for ``snapshot``; empty when it is valid.

    ``analysis``: :func:`~konorkestra.repo.analysis.analyze` of ``snapshot``, if
    the caller has it already; otherwise it is computed (through ``cache``).
    """
    if analysis is None:
        analysis = analyze(snapshot, cache=cache)
    found = [*snapshot.diagnostics, *analysis.diagnostics]
    if history is not None:
        found += immutability(analysis, history)
    return sorted(found, key=Diagnostic.sort_key)
