"""Git revisions with ancestry suffixes (``main~2``, ``HEAD^``, ``X^2~1``), read with dulwich.

Example::

    from konorkestra.repo.revspec import resolve_revision
    from konorkestra.repo.sources import open_repo
    with open_repo("/srv/config.git") as repo:
        resolve_revision(repo, "origin/main~1").id    # the first parent of origin/main

dulwich's ``parse_commit`` names commits by sha, short sha, branch, tag or
``HEAD`` but not with ``~``/``^``, which a reviewer types all the time
(``konorctl diff main~1 main``). Invariants:

* A revision is a base that :func:`konorkestra.repo.sources.resolve_commit`
  knows, followed by any number of ``~N`` (the N-th first-parent ancestor;
  ``~`` is ``~1``) and ``^N`` (the N-th parent; ``^`` is ``^1``, ``^0`` the
  commit itself), applied left to right, as ``git rev-parse`` does. Git ref
  names cannot contain ``~`` or ``^``, so the split is never ambiguous.
* Walking past a root commit or to a parent that does not exist is an unknown
  revision (:class:`~konorkestra.repo.sources.RepoError`), never an exception
  of dulwich's.
"""

from __future__ import annotations

import re

from dulwich.objects import Commit, ObjectID
from dulwich.repo import Repo

from konorkestra.repo.sources import RepoError, resolve_commit

_REVISION = re.compile(r"(?P<base>.+?)(?P<suffix>(?:[~^][0-9]*)*)")
_STEP = re.compile(r"([~^])([0-9]*)")


def _parent(repo: Repo, commit: Commit, index: int, rev: str) -> Commit:
    if index < 1 or index > len(commit.parents):
        raise RepoError(f"{rev!r}: unknown revision (no such parent)")
    parent = repo.object_store[ObjectID(commit.parents[index - 1])]
    if not isinstance(parent, Commit):
        raise RepoError(f"{rev!r}: unknown revision")
    return parent


def resolve_revision(repo: Repo, rev: str) -> Commit:
    """The commit ``rev`` names, ancestry suffixes included; raise :class:`RepoError`."""
    match = _REVISION.fullmatch(rev)
    if match is None:
        raise RepoError(f"{rev!r}: unknown revision")
    commit = resolve_commit(repo, match["base"])
    for kind, digits in _STEP.findall(match["suffix"]):
        count = int(digits) if digits else 1
        if kind == "~":
            for _ in range(count):
                commit = _parent(repo, commit, 1, rev)
        elif count:
            commit = _parent(repo, commit, count, rev)
    return commit
