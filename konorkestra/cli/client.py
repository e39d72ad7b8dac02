"""The HTTP client ``konorctl`` uses to talk to the Center.

Example::

    settings = Settings.resolve(center=None, token=None)   # flags > env > context
    with CenterClient(settings) as center:
        commits = center.get("/v1/commits", limit=20)["commits"]

Invariants:

* Each setting (Center URL, token, CA file, context name, timeout) comes from
  the first of: the flag after the subcommand (``konorctl releases --center
  X``), the flag before it (``konorctl --center X releases``), the environment
  (``KONORCTL_CENTER`` / ``KONORCTL_TOKEN`` / ``KONORCTL_CA`` /
  ``KONORCTL_CONTEXT`` / ``KONORCTL_TIMEOUT``), the selected context of the
  config file (:mod:`konorkestra.cli.contexts`; the context named by
  ``--context`` or ``KONORCTL_CONTEXT``, else the file's current one), then
  the default
  (:data:`DEFAULT_CENTER`, the Center's own default listen address, TLS;
  :data:`DEFAULT_TIMEOUT` seconds; a context holds no timeout). The choice is
  the pure :func:`choose`; :meth:`Settings.resolve` only gathers the layers
  (click's context meta, ``os.environ``, the file). A timeout that is not a
  number > 0 is a usage error (exit 2).
* Every failure is a :class:`CenterError` with one line for a person: a
  connection problem says what went wrong where and what to do
  (:mod:`konorkestra.cli.connerrors`); an API error shows the Center's message
  and code. No traceback reaches the terminal.
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any

import click
import httpx

from konorkestra.cli import connerrors
from konorkestra.cli.contexts import AFTER, BEFORE, Config, ConfigError, config_file, load

DEFAULT_CENTER = "https://127.0.0.1:7400"
"""``konorkestra center``'s default ``--listen`` (TLS is on by default)."""
DEFAULT_TIMEOUT = 30.0
"""Seconds a request to the Center may take (connect, each read and write)."""

__all__ = [
    "DEFAULT_CENTER",
    "DEFAULT_TIMEOUT",
    "CenterClient",
    "CenterError",
    "Flags",
    "Settings",
    "config_file",
]


class CenterError(click.ClickException):
    """A one-line failure talking to the Center (exit code 1).

    ``status`` is the HTTP status when the Center answered with an error (it was
    reached and refused), None when it could not be reached or answered nonsense.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Flags:
    """One layer of settings; None means "not given here"."""

    center: str | None = None
    token: str | None = None
    ca: str | None = None
    context: str | None = None
    timeout: str | None = None

    def over(self, lower: Flags) -> Flags:
        """Each field from this layer when given, else from ``lower``."""
        return Flags(*(getattr(self, f.name) or getattr(lower, f.name) for f in fields(Flags)))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Flags:
        names = [f.name for f in fields(Flags)]
        return cls(*(env.get(f"KONORCTL_{name.upper()}") or None for name in names))

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], key: str) -> Flags:
        given = meta.get(key) or {}
        return cls(*(given.get(f.name) for f in fields(Flags)))


@dataclass(frozen=True)
class Settings:
    """Where the Center is and how to reach it. ``configured`` is False when the
    URL is :data:`DEFAULT_CENTER` because nothing named one; ``timeout`` (> 0)
    bounds each request in seconds."""

    center: str
    token: str | None = None
    ca: str | None = None
    configured: bool = field(default=True, compare=False)
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def resolve(
        cls,
        *,
        center: str | None,
        token: str | None,
        ca: str | None = None,
        context: str | None = None,
    ) -> Settings:
        """Settings from these flags over the layers in the module docstring."""
        after = Flags(center, token, ca, context)
        click_ctx = click.get_current_context(silent=True)
        if click_ctx is not None:
            after = after.over(Flags.from_meta(click_ctx.meta, AFTER))
            before = Flags.from_meta(click_ctx.meta, BEFORE)
        else:
            before = Flags()
        try:
            config = load(config_file())
            return choose(after.over(before), Flags.from_env(os.environ), config)
        except ConfigError as exc:
            raise CenterError(str(exc)) from None


def choose(flags: Flags, env: Flags, config: Config) -> Settings:
    """The settings: ``flags`` (after over before) > ``env`` > context > default."""
    chosen = flags.over(env)
    ctx = config.selected(chosen.context)
    url = chosen.center or ctx.center
    if url is not None and not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r}: the Center URL starts with http:// or https://")
    return Settings(
        (url or DEFAULT_CENTER).rstrip("/"),
        chosen.token or ctx.token,
        chosen.ca or ctx.ca,
        configured=url is not None,
        timeout=timeout_seconds(chosen.timeout),
    )


def timeout_seconds(text: str | None) -> float:
    """``--timeout`` / ``KONORCTL_TIMEOUT`` as seconds: a finite number > 0;
    :data:`DEFAULT_TIMEOUT` when not given."""
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise click.BadParameter(
            f"{text!r}: the timeout is a number of seconds > 0",
            param_hint="--timeout / KONORCTL_TIMEOUT",
        )
    return seconds


def _api_error(resp: httpx.Response) -> CenterError:
    try:
        err = resp.json()["error"]
        message, code = str(err["message"]), str(err["code"])
    except (ValueError, KeyError, TypeError):
        return CenterError(
            f"the Center answered HTTP {resp.status_code} ({resp.reason_phrase})", resp.status_code
        )
    hint = {
        "unauthenticated": " — pass --token, set KONORCTL_TOKEN, or run konorctl login",
    }.get(code, "")
    return CenterError(f"{message} [{code}, HTTP {resp.status_code}]{hint}", resp.status_code)


def _verify(ca: str | None) -> ssl.SSLContext | bool:
    if not ca:
        return True
    try:
        return ssl.create_default_context(cafile=ca)
    except FileNotFoundError:
        raise CenterError(f"CA file {ca}: not found (--ca, KONORCTL_CA or the context)") from None
    except (OSError, ssl.SSLError) as exc:
        raise CenterError(f"CA file {ca}: not a PEM certificate ({exc})") from None


class CenterClient:
    """A small synchronous client over httpx; use as a context manager."""

    def __init__(self, settings: Settings, *, timeout: float | None = None) -> None:
        """``timeout`` overrides ``settings.timeout`` (seconds per request)."""
        self.settings = settings
        timeout = settings.timeout if timeout is None else timeout
        headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else {}
        self._http = httpx.Client(
            base_url=settings.center, headers=headers, timeout=timeout, verify=_verify(settings.ca)
        )

    def __enter__(self) -> CenterClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kwargs)
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            raise self._unreachable(exc) from None
        if resp.status_code >= 400:
            raise _api_error(resp)
        return resp

    def _unreachable(self, exc: BaseException) -> CenterError:
        s = self.settings
        failure = connerrors.classify(exc, s.center)
        if failure is connerrors.Failure.DISCONNECTED and connerrors.speaks_tls(s.center):
            failure = connerrors.Failure.PLAIN_TO_TLS
        attempt = connerrors.Attempt(s.center, s.ca, s.configured)
        return CenterError(connerrors.explain(failure, attempt, connerrors.detail(exc)))

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._json(self.request("GET", path, params=clean))

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._json(self.request("POST", path, json=body))

    def _json(self, resp: httpx.Response) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise CenterError(
                f"the Center at {self.settings.center} sent a non-JSON answer"
            ) from None
