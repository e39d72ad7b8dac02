"""Errors of the agent store, grouped by who must react.

Example::

    >>> err = RollbackRefusedError("group 'checkout': sequence 3 is at or below "
    ...     "the high-water mark 4", hint="a rollback is a new Release with a higher sequence")
    >>> print(err.diagnostics())
    group 'checkout': sequence 3 is at or below the high-water mark 4
    hint: a rollback is a new Release with a higher sequence

* :class:`StoreError` is the base; every error carries ``diagnostics()``.
* Untrusted input (bad blobs, malformed releases, refused sequences, refused
  validation) is kept apart from local damage (an unservable release, a broken
  store) so the sync loop can tell "report to the Center" from "page a human".
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every agent-store error."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """Operator-facing text: what happened and what to do."""
        text = self.message
        if self.hint:
            text += f"\nhint: {self.hint}"
        if self.__cause__ is not None:
            text += f"\ncaused by: {type(self.__cause__).__name__}: {self.__cause__}"
        return text


class UntrustedDataError(StoreError):
    """The offered release or blobs are wrong; nothing was changed."""


class InvalidReleaseError(UntrustedDataError):
    """A release or ConfigSet blob is malformed (bad name, path, JSON, shape)."""


class BlobIntegrityError(UntrustedDataError):
    """A blob's bytes do not match its digest or declared size."""


class BlobMissingError(UntrustedDataError):
    """A blob the release needs is neither supplied, held, nor fetchable."""


class RollbackRefusedError(UntrustedDataError):
    """The sequence is at or below the group's high-water mark with another digest."""


class ValidationRefusedError(UntrustedDataError):
    """The validator refused the release (e.g. data violating its schema)."""


class LocalDamageError(StoreError):
    """The disk holds something the store cannot repair by itself."""


class ReleaseUnavailableError(LocalDamageError):
    """The group's current release is damaged and cannot be served or repaired."""


class StoreLockedError(LocalDamageError):
    """Another process (or an unclosed store) holds the data directory."""


class StoreBrokenError(LocalDamageError):
    """An I/O error interrupted a durable step; reopen the store to recover."""
