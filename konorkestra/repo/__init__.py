"""Read, validate and resolve a config repo: the one path every consumer uses.

Example::

    from konorkestra.repo import history_before, load_commit, resolve, validate

    snapshot = load_commit("/srv/config.git", "main")      # or load_worktree(path)
    diagnostics = validate(snapshot, history=history_before("/srv/config.git", "main"))
    for d in diagnostics:
        print(f"{d.file}:{d.line}:{d.column}: {d.severity}: {d.message} [{d.code}]")
    if not diagnostics:
        for group in resolve(snapshot).groups.values():
            print(group.name, group.policy_digest, [cs.digest for cs in group.configsets])

Across many commits of one repo (the Center), hold an :class:`AnalysisCache`
and pass it as ``cache=`` to ``load_commit``/``validate``/``resolve`` (or
analyze once with :func:`konorkestra.repo.analysis.analyze` and pass
``analysis=``): unchanged files are neither parsed nor checked again.

Invariants:

* Bad content never raises: it becomes diagnostics with file, line, column,
  JSON path, hint and a stable code (docs/reference/format.md lists every code).
  :class:`RepoError` is raised only for usage errors (missing directory, not a
  Git repository, unknown revision).
* The Center, ``konorctl validate``, the pre-commit hook and the pre-receive
  hook all call these functions, so they always agree.
"""

from konorkestra.repo.cache import AnalysisCache
from konorkestra.repo.diagnostics import CODES, Diagnostic, Severity, has_errors
from konorkestra.repo.history import History, Published, history_before, history_through
from konorkestra.repo.loader import Definition, Snapshot, load_commit, load_worktree
from konorkestra.repo.resolve import (
    Resolved,
    ResolvedConfigSet,
    ResolvedGroup,
    ResolveError,
    resolve,
)
from konorkestra.repo.sources import RepoError, SourceError
from konorkestra.repo.validate import validate

__all__ = [
    "CODES",
    "AnalysisCache",
    "Definition",
    "Diagnostic",
    "History",
    "Published",
    "RepoError",
    "ResolveError",
    "Resolved",
    "ResolvedConfigSet",
    "ResolvedGroup",
    "Severity",
    "Snapshot",
    "SourceError",
    "has_errors",
    "history_before",
    "history_through",
    "load_commit",
    "load_worktree",
    "resolve",
    "validate",
]
