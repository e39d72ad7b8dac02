"""Where commits come from: a local repository, or a remote one mirrored locally.

Example::

    source = GitSource.open("/srv/config.git", branch="main", mirror=data / "mirror.git")
    source.refresh()                                   # fetch when remote; no-op when local
    for meta in source.new_commits(known=lambda sha: sha in seen):
        ...                                            # oldest first, first-parent chain

Invariants:

* :meth:`GitSource.new_commits` walks first parents back from the branch head
  until it meets a commit the caller already knows (or the root), and returns
  the unknown ones oldest first. After a force-push, commits of the new history
  that the store has not seen are processed; nothing already stored is redone.
* A remote URL is fetched with dulwich into a bare mirror under the data
  directory; ingest then reads the mirror exactly as it reads a local repo.
* Nothing here validates content; bad commits are for the processor to judge.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dulwich.client import get_transport_and_path
from dulwich.objects import Commit
from dulwich.refs import Ref
from dulwich.repo import Repo

from konorkestra.repo.loader import commit_subject
from konorkestra.repo.sources import RepoError, open_repo


class SourceUnavailable(Exception):
    """The repository cannot be read or fetched right now; the message says why."""


@dataclass(frozen=True)
class CommitMeta:
    """What the store records about a commit, read from Git."""

    sha: str
    parent: str | None
    author: str
    committed_at: dt.datetime
    subject: str
    message: str = ""
    """The whole commit message (its trailers opt into destructive changes)."""

    @classmethod
    def of(cls, commit: Commit) -> CommitMeta:
        tz = dt.timezone(dt.timedelta(seconds=commit.commit_timezone))
        return cls(
            sha=commit.id.decode("ascii"),
            parent=commit.parents[0].decode("ascii") if commit.parents else None,
            author=commit.author.decode("utf-8", "replace"),
            committed_at=dt.datetime.fromtimestamp(commit.commit_time, tz).astimezone(dt.UTC),
            subject=commit_subject(commit.message),
            message=commit.message.decode("utf-8", "replace"),
        )


def is_remote(location: str) -> bool:
    """URLs (``scheme://`` or ``user@host:path``) are remote; existing paths are local."""
    if os.path.isdir(location):
        return False
    return "://" in location or ("@" in location and ":" in location)


@dataclass
class GitSource:
    """A branch of a repository, read locally (``path``) and fetched from ``url`` if remote."""

    path: Path
    branch: str
    url: str | None = None

    @classmethod
    def open(cls, location: str, *, branch: str, mirror: Path) -> GitSource:
        if not is_remote(location):
            path = Path(location).absolute()
            if not path.is_dir():
                raise SourceUnavailable(f"{location}: no such directory")
            try:
                open_repo(path).close()
            except RepoError as exc:
                raise SourceUnavailable(str(exc)) from None
            return cls(path, branch)
        if not mirror.exists():
            Repo.init_bare(str(mirror), mkdir=True)
        return cls(mirror, branch, url=location)

    @property
    def git_dir(self) -> Path:
        """The directory holding ``refs/`` (``.git`` of a work tree, or the bare repo)."""
        dot_git = self.path / ".git"
        return dot_git if dot_git.is_dir() else self.path

    @property
    def ref(self) -> Ref:
        return Ref(b"refs/heads/" + self.branch.encode())

    @property
    def label(self) -> str:
        return self.url or str(self.path)

    def refresh(self) -> None:
        """Fetch the branch from the remote into the mirror (local sources: nothing)."""
        if self.url is None:
            return
        try:
            client, remote_path = get_transport_and_path(self.url)
            with Repo(str(self.path)) as repo:
                result = client.fetch(remote_path, repo)
                head = result.refs.get(self.ref)
                if head is None:
                    raise SourceUnavailable(f"{self.url} has no branch {self.branch!r}")
                repo.refs[self.ref] = head
        except SourceUnavailable:
            raise
        except Exception as exc:  # dulwich raises many types for network trouble
            raise SourceUnavailable(f"fetching {self.url} failed: {exc}") from exc

    def head(self) -> str | None:
        """The branch's commit sha, or ``None`` while the branch does not exist."""
        with open_repo(self.path) as repo:
            try:
                return repo.refs[self.ref].decode("ascii")
            except KeyError:
                return None

    def new_commits(self, known: Callable[[str], bool]) -> list[CommitMeta]:
        """Unknown first-parent commits up to the head, oldest first."""
        head = self.head()
        if head is None:
            return []
        out: list[CommitMeta] = []
        with open_repo(self.path) as repo:
            sha: str | None = head
            while sha is not None and not known(sha):
                obj = repo[sha.encode("ascii")]
                if not isinstance(obj, Commit):
                    raise SourceUnavailable(f"{sha} is not a commit")
                meta = CommitMeta.of(obj)
                out.append(meta)
                sha = meta.parent
        out.reverse()
        return out
