"""``konorctl``'s config file: named contexts (Center URL, CA, API token).

Example::

    config = load(config_file())
    config = config.with_context("prod", Context("https://center:7400", token, ca))
    save(config_file(), config)              # 0600, atomic; "prod" is now current

The file (``$KONORCTL_CONFIG``, else ``$XDG_CONFIG_HOME/konorkestra/konorctl.yaml``,
else ``~/.config/konorkestra/konorctl.yaml``)::

    current-context: prod
    contexts:
      prod: {center: https://center:7400, ca: /etc/konorkestra/ca.pem, token: kt_...}
      lab:  {center: https://127.0.0.1:7400, ca: /home/me/ca.pem, token: kt_...}

Invariants:

* The old flat file (keys ``center``, ``token``, ``ca`` at the top, as
  ``konorctl login`` wrote it before contexts) reads as one context named
  :data:`DEFAULT_NAME`, current. Saving always writes the named form, so the
  flat one is converted (nothing in it is lost) the first time it is saved.
* Parsing and rendering are pure (:func:`parse`, :func:`to_data`,
  :func:`redact`); only :func:`load` and :func:`save` touch the disk. The file
  is written with mode 0600 through :func:`konorkestra.durable.atomic_write`
  because it holds bearer tokens.
* :func:`redact` never returns more of a token than its public id
  (``kt_0123456789ab``, the part before the dot); a token without that shape
  shows as ``<set>``. ``konorctl config view`` prints only redacted tokens.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click

DEFAULT_NAME = "default"
BEFORE = "konorctl.before"
AFTER = "konorctl.after"
"""Keys of click's ``ctx.meta`` holding the flags given before / after the subcommand."""
_FLAT_KEYS = ("center", "token", "ca")


class ConfigError(Exception):
    """The config file is unreadable or not shaped as documented above."""


@dataclass(frozen=True)
class Context:
    """Where one Center is and how to talk to it; any field may be unset."""

    center: str | None = None
    token: str | None = None
    ca: str | None = None


@dataclass(frozen=True)
class Config:
    current: str | None = None
    contexts: dict[str, Context] = field(default_factory=dict)

    def with_context(self, name: str, context: Context) -> Config:
        """This config with ``name`` set to ``context`` and made current."""
        return Config(name, {**self.contexts, name: context})

    def use(self, name: str) -> Config:
        self.require(name)
        return replace(self, current=name)

    def without(self, name: str) -> Config:
        """This config without ``name``; deleting the current one leaves none current."""
        self.require(name)
        rest = {k: v for k, v in self.contexts.items() if k != name}
        return Config(None if self.current == name else self.current, rest)

    def require(self, name: str) -> Context:
        if name not in self.contexts:
            known = ", ".join(sorted(self.contexts)) or "none; run konorctl login --name NAME"
            raise ConfigError(f"no context {name!r} (contexts: {known})")
        return self.contexts[name]

    def selected(self, name: str | None) -> Context:
        """The context ``name`` (must exist), else the current one, else an empty one."""
        if name:
            return self.require(name)
        if self.current and self.current in self.contexts:
            return self.contexts[self.current]
        return Context()


def remember(layer: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback storing a flag's value in ``ctx.meta[layer]`` (and returning it)."""

    def store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and param.name:
            ctx.meta.setdefault(layer, {})[param.name] = value
        return value

    return store


def config_file() -> Path:
    explicit = os.environ.get("KONORCTL_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "konorkestra" / "konorctl.yaml"


def _context(where: str, value: Any) -> Context:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping with keys center, token, ca")
    unknown = set(value) - set(_FLAT_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    picked = {k: None if value.get(k) in (None, "") else str(value[k]) for k in _FLAT_KEYS}
    return Context(**picked)


def parse(data: Any) -> Config:
    """The config in ``data`` (the loaded YAML); flat files become context ``default``."""
    if data is None:
        return Config()
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with keys current-context and contexts")
    if "contexts" not in data and "current-context" not in data:
        if not any(k in data for k in _FLAT_KEYS):
            return Config()
        return Config(DEFAULT_NAME, {DEFAULT_NAME: _context("the file", data)})
    raw = data.get("contexts") or {}
    if not isinstance(raw, dict):
        raise ConfigError("contexts: expected a mapping of name to context")
    contexts = {str(name): _context(f"context {name}", v) for name, v in raw.items()}
    current = data.get("current-context")
    return Config(None if current in (None, "") else str(current), contexts)


def to_data(config: Config, *, secrets: bool = True) -> dict[str, Any]:
    """The YAML-ready form of ``config``; with ``secrets=False`` tokens are redacted."""
    contexts: dict[str, Any] = {}
    for name, ctx in sorted(config.contexts.items()):
        token = ctx.token if secrets or ctx.token is None else redact(ctx.token)
        contexts[name] = {k: v for k, v in (("center", ctx.center), ("ca", ctx.ca),
                                            ("token", token)) if v is not None}  # fmt: skip
    return {"current-context": config.current, "contexts": contexts}


def redact(token: str) -> str:
    """``kt_0123456789ab.secret`` → ``kt_0123456789ab…``; anything else → ``<set>``."""
    head, dot, _ = token.partition(".")
    if dot and head.startswith("kt_") and head[3:].isalnum():
        return head + "…"
    return "<set>"


def load(path: Path) -> Config:
    if not path.exists():
        return Config()
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        loaded = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        return parse(loaded)
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {' '.join(str(exc).split())}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save(path: Path, config: Config) -> None:
    """Write ``config`` to ``path`` (mode 0600, atomic, parent created)."""
    from ruamel.yaml import YAML

    from konorkestra.agent.store.fsutil import ensure_dir
    from konorkestra.durable import atomic_write

    ensure_dir(path.parent)
    buf = io.StringIO()
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    yaml.dump(to_data(config), buf)
    atomic_write(path, buf.getvalue().encode(), 0o600)
