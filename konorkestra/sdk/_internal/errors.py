"""The SDK's errors, by who must react.

* :class:`NotFoundError` — the agent has no release for the group (wrong name,
  not in this node's scope, or nothing released yet): fix the name or wait.
* :class:`UnavailableError` — neither the agent nor its data directory could
  answer in time: an operations problem on this node.
* :class:`BindError` — the config does not fit the application's dataclass: the
  release is wrong for this app (the SDK acks it ``failed``).
"""

from __future__ import annotations


class SdkError(Exception):
    """Base class of every error the SDK raises on purpose."""


class NotFoundError(SdkError, LookupError):
    """The agent has no committed release for this group."""


class UnavailableError(SdkError):
    """Neither the agent nor the on-disk fallback could provide the config."""


class BindError(SdkError, ValueError):
    """A ConfigSet's data does not validate against the bound dataclass."""


def describe(exc: BaseException) -> str:
    """``TypeName: message`` as sent in ``failed`` acks (at most 1000 characters)."""
    text = str(exc)
    out = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return out[:1000]
