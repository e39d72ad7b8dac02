"""The HTTP client ``konorctl`` uses to talk to the Center.

Example::

    settings = Settings.resolve(center=None, token=None)   # flags > env > config file
    with CenterClient(settings) as center:
        commits = center.get("/v1/commits", limit=20)["commits"]

Invariants:

* Settings come from, in order: the command-line flags, ``KONORCTL_CENTER`` /
  ``KONORCTL_TOKEN`` / ``KONORCTL_CA``, then the config file
  (``$KONORCTL_CONFIG``, else ``$XDG_CONFIG_HOME/konorkestra/konorctl.yaml``,
  else ``~/.config/konorkestra/konorctl.yaml``; keys ``center``, ``token``,
  ``ca`` — the file ``konorctl login`` writes). The Center URL defaults to
  :data:`DEFAULT_CENTER`.
* Every failure is a :class:`CenterError` with one line for a person: a
  connection problem names the URL and what to check; an API error shows the
  Center's message and code. No traceback reaches the terminal.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import click
import httpx

DEFAULT_CENTER = "http://127.0.0.1:7400"


class CenterError(click.ClickException):
    """A one-line failure talking to the Center (exit code 1).

    ``status`` is the HTTP status when the Center answered with an error (it was
    reached and refused), None when it could not be reached or answered nonsense.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def config_file() -> Path:
    explicit = os.environ.get("KONORCTL_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "konorkestra" / "konorctl.yaml"


def _read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        loaded = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise CenterError(f"cannot read {path}: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise CenterError(f"{path}: expected a mapping with keys center, token, ca")
    return loaded


@dataclass(frozen=True)
class Settings:
    center: str
    token: str | None = None
    ca: str | None = None

    @classmethod
    def resolve(cls, *, center: str | None, token: str | None) -> Settings:
        file = _read_config(config_file())

        def pick(flag: str | None, env: str, key: str) -> str | None:
            value = flag or os.environ.get(env) or file.get(key)
            return None if value in (None, "") else str(value)

        url = pick(center, "KONORCTL_CENTER", "center") or DEFAULT_CENTER
        if not url.startswith(("http://", "https://")):
            raise click.BadParameter(f"{url!r}: the Center URL starts with http:// or https://")
        return cls(
            url.rstrip("/"), pick(token, "KONORCTL_TOKEN", "token"), pick(None, "KONORCTL_CA", "ca")
        )


def _api_error(resp: httpx.Response) -> CenterError:
    try:
        err = resp.json()["error"]
        message, code = str(err["message"]), str(err["code"])
    except (ValueError, KeyError, TypeError):
        return CenterError(
            f"the Center answered HTTP {resp.status_code} ({resp.reason_phrase})", resp.status_code
        )
    hint = {
        "unauthenticated": f" — pass --token, set KONORCTL_TOKEN, or put token: in {config_file()}",
    }.get(code, "")
    return CenterError(f"{message} [{code}, HTTP {resp.status_code}]{hint}", resp.status_code)


class CenterClient:
    """A small synchronous client over httpx; use as a context manager."""

    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        self.settings = settings
        verify: ssl.SSLContext | bool = True
        if settings.ca:
            verify = ssl.create_default_context(cafile=settings.ca)
        headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else {}
        self._http = httpx.Client(
            base_url=settings.center, headers=headers, timeout=timeout, verify=verify
        )

    def __enter__(self) -> CenterClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = self.settings.center
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise CenterError(
                f"cannot connect to the Center at {url} ({_reason(exc)}); is `konorkestra "
                "center` running and listening there? Set --center or KONORCTL_CENTER"
            ) from None
        except httpx.TimeoutException:
            raise CenterError(f"the Center at {url} did not answer in time") from None
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            raise CenterError(f"talking to the Center at {url} failed: {exc}") from None
        if resp.status_code >= 400:
            raise _api_error(resp)
        return resp

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


def _reason(exc: Exception) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service" in text or "nodename" in text:
        return "unknown host"
    return str(exc) or type(exc).__name__
