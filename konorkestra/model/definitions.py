"""The three definition kinds of a config repo, and their canonical forms.

Example::

    >>> from konorkestra.model.definitions import ConfigSet, ConfigSetSelector, Policy
    >>> cs = ConfigSet(name="checkout-api", version=3, data={"timeout_ms": 250})
    >>> cs.blob()
    b'{"apiVersion":"konorkestra.io/v1","kind":"ConfigSet","metadata":{"name":"checkout-api","version":3},"spec":{"data":{"timeout_ms":250}}}'
    >>> str(ConfigSetSelector.parse("checkout-api@3"))
    'checkout-api@3'
    >>> Policy.from_spec("fast", {"strategy": "all-at-once"}).canonical_dict()["spec"]["steps"]
    [{'percent': 100, 'bake': '0s'}]

Invariants (binding, see docs/contributing/contracts.md):

* A ConfigSet's canonical form holds exactly ``apiVersion``, ``kind``,
  ``metadata.name``, ``metadata.version`` and ``spec.data`` plus ``spec.schema``
  (resolved, inline) and ``spec.files`` (path -> digest and size) only when
  present. Labels, annotations and source formatting never reach it.
* ``ConfigSet.blob()`` is RFC 8785 canonical JSON of that form and
  ``ConfigSet.digest()`` is its ``sha256:`` digest: equal definitions give equal
  bytes, however the YAML was written.
* A Policy's canonical form has every default applied and durations spelled
  canonically (``<seconds>s``), so omitting a default or writing ``1m30s`` for
  ``90s`` does not change its digest. A step's ``selector`` appears only when
  it names at least one label, so Policies without selectors keep the digest
  they had before selectors existed.
* Everything here is pure: no I/O, and objects are immutable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, cast

from konorkestra.model.canonical import canonical_bytes, digest_of, digest_value
from konorkestra.model.durations import format_duration, parse_duration
from konorkestra.model.signals import GUARD_SIGNALS, Comparison
from konorkestra.model.types import ConfigSetName, Digest, GroupName, PolicyName

API_VERSION = "konorkestra.io/v1"
KINDS = ("ConfigSet", "Policy", "Group")
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
"""DNS label: lowercase letters, digits and ``-``, 1-63 chars, no edge ``-``."""

Strategy = Literal["all-at-once", "canary", "linear"]
OnFailure = Literal["rollback", "pause"]
Approval = Literal["auto", "manual"]


class DefinitionError(ValueError):
    """A value cannot form a definition (e.g. a malformed ``name@version``)."""


def is_name(text: str) -> bool:
    """True when ``text`` is a valid DNS-label style definition name."""
    return NAME_RE.fullmatch(text) is not None


@dataclass(frozen=True, order=True)
class ConfigSetSelector:
    """How a Group names a ConfigSet: ``name`` (highest version in the commit) or
    ``name@version``. Resolution turns it into a
    :class:`konorkestra.model.release.ConfigSetRef` (a version with its digest)."""

    name: ConfigSetName
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> ConfigSetSelector:
        name, sep, version = text.partition("@")
        if not is_name(name):
            raise DefinitionError(f"{text!r}: {name!r} is not a valid ConfigSet name")
        if not sep:
            return cls(ConfigSetName(name))
        digits = version[1:] if version[:1] == "v" else version  # the seed writes name@v12
        if not (digits.isascii() and digits.isdigit()) or int(digits) < 1:
            raise DefinitionError(
                f"{text!r}: version must be a positive integer (name@12 or name@v12)"
            )
        return cls(ConfigSetName(name), int(digits))

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


@dataclass(frozen=True)
class FileEntry:
    """A raw repo file carried by a ConfigSet, addressed by its content digest."""

    digest: Digest
    size: int

    @classmethod
    def of(cls, content: bytes) -> FileEntry:
        return cls(digest_of(content), len(content))


@dataclass(frozen=True)
class ConfigSet:
    """One immutable version of a bundle of config data (and raw files)."""

    name: ConfigSetName
    version: int
    data: Mapping[str, Any] = field(hash=False)
    schema: Mapping[str, Any] | None = field(default=None, hash=False)
    files: Mapping[str, FileEntry] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def canonical_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"data": self.data}
        if self.schema is not None:
            spec["schema"] = self.schema
        if self.files:
            spec["files"] = {
                path: {"digest": entry.digest, "size": entry.size}
                for path, entry in self.files.items()
            }
        return {
            "apiVersion": API_VERSION,
            "kind": "ConfigSet",
            "metadata": {"name": self.name, "version": self.version},
            "spec": spec,
        }

    def blob(self) -> bytes:
        """Canonical bytes: the ConfigSet blob of docs/contributing/contracts.md."""
        return self._blob

    def digest(self) -> Digest:
        """``name@version`` maps to this digest forever."""
        return self._digest

    @cached_property
    def _blob(self) -> bytes:
        return canonical_bytes(self.canonical_dict())

    @cached_property
    def _digest(self) -> Digest:
        return digest_of(self._blob)


@dataclass(frozen=True)
class Step:
    """Roll out to ``percent`` of nodes, then wait ``bake_seconds``.

    ``selector`` (node labels, all must match) says which nodes the wave is drawn
    from first; the rest of the wave, if any, comes from the other nodes
    (:mod:`konorkestra.rollout.waves`). Empty means no preference.
    """

    percent: int
    bake_seconds: int = 0
    selector: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Guard:
    """Halt the rollout when ``signal`` crosses ``threshold``."""

    signal: str
    threshold: float

    @property
    def comparison(self) -> Comparison:
        return GUARD_SIGNALS[self.signal].comparison


@dataclass(frozen=True)
class Policy:
    """How a Group's changes roll out."""

    name: PolicyName
    strategy: Strategy
    steps: tuple[Step, ...]
    guards: tuple[Guard, ...] = ()
    on_failure: OnFailure = "rollback"
    approval: Approval = "auto"

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any]) -> Policy:
        """Build from a schema-valid ``spec``, applying defaults.

        Raises :class:`~konorkestra.model.durations.DurationError` for a bad bake.
        """
        strategy = cast(Strategy, spec["strategy"])
        raw_steps = spec.get("steps") or [{"percent": 100}]
        steps = tuple(
            Step(
                int(s["percent"]),
                parse_duration(str(s.get("bake", "0s"))),
                {str(k): str(v) for k, v in (s.get("selector") or {}).items()},
            )
            for s in raw_steps
        )
        guards = tuple(Guard(str(g["signal"]), g["threshold"]) for g in spec.get("guards", []))
        return cls(
            name=PolicyName(name),
            strategy=strategy,
            steps=steps,
            guards=guards,
            on_failure=cast(OnFailure, spec.get("onFailure", "rollback")),
            approval=cast(Approval, spec.get("approval", "auto")),
        )

    def canonical_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": "Policy",
            "metadata": {"name": self.name},
            "spec": {
                "strategy": self.strategy,
                "steps": [_step_dict(s) for s in self.steps],
                "guards": [{"signal": g.signal, "threshold": g.threshold} for g in self.guards],
                "onFailure": self.on_failure,
                "approval": self.approval,
            },
        }

    def digest(self) -> Digest:
        return digest_value(self.canonical_dict())


def _step_dict(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"percent": step.percent, "bake": format_duration(step.bake_seconds)}
    if step.selector:
        out["selector"] = dict(step.selector)
    return out


@dataclass(frozen=True)
class Group:
    """ConfigSets that move together under one Policy."""

    name: GroupName
    configsets: tuple[ConfigSetSelector, ...]
    policy: PolicyName

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any]) -> Group:
        """Build from a schema-valid ``spec``; raises :class:`DefinitionError`."""
        refs = tuple(ConfigSetSelector.parse(str(r)) for r in spec["configSets"])
        return cls(GroupName(name), refs, PolicyName(str(spec["policy"])))
