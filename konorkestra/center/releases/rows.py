"""The releases wing's store edge: ``releases`` and ``group_states`` rows become types here.

Example::

    row = conn.execute(sa.select(*RELEASE_COLUMNS).where(R.c.id == rid)).one()
    release = release_from_row(row._mapping)     # a model Release
    release.to_json()                            # what /v1/releases answers

Invariants:

* Rows become model types here and nowhere else in the wing: a ``releases``
  row is a :class:`~konorkestra.model.release.Release`, its ``configsets`` a
  tuple of :class:`~konorkestra.model.release.ConfigSetRef` and its ``policy`` a
  :class:`~konorkestra.model.release.PolicyRef`; a ``group_states`` row is a
  :class:`GroupView` (whose ``.to_json()`` is the ``/v1/groups`` JSON). Code
  past this edge never indexes a row.
* Stored times come back aware and in UTC (:func:`~konorkestra.center.store.engine.utc`),
  so ``release_from_row(row).to_json()`` is exactly the JSON the API has always
  returned for that row.
* A row the model refuses (which the Center never writes) raises
  :class:`ValueError` naming the field; nothing here repairs a row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.engine import RowMapping

from konorkestra.center.store import schema
from konorkestra.center.store.engine import utc
from konorkestra.model.release import ConfigSetRef, PolicyRef, Release
from konorkestra.model.types import Digest, GroupName, JsonObject, PolicyName, ReleaseId, Sequence

R = schema.releases
RELEASE_COLUMNS = [c for c in R.c if c.name != "bundle"]
"""Every column of ``releases`` but the bundle: what :func:`release_from_row` reads."""


@dataclass(frozen=True)
class GroupView:
    """A Group as ``/v1/groups`` shows it.

    ``commit``, ``policy`` and ``configsets`` are the Group as the latest accepted
    commit defines it, all ``None`` when that commit does not define it;
    ``latest_release`` is its newest Release, if any; ``releases`` are read only
    for one Group (``/v1/groups/{name}``). The Policy of a definition carries no
    strategy (a ``group_states`` row keeps only name and digest).
    """

    name: GroupName
    commit: str | None = None
    policy: PolicyRef | None = None
    configsets: tuple[ConfigSetRef, ...] | None = None
    latest_release: Release | None = None
    releases: tuple[Release, ...] | None = None

    def to_json(self) -> JsonObject:
        """The API's JSON of a Group (``GET /v1/groups``, ``GET /v1/groups/{name}``)."""
        latest = self.latest_release
        out: JsonObject = {
            "name": self.name,
            "defined": self.policy is not None,
            "commit": self.commit,
            "policy": None
            if self.policy is None
            else {"name": self.policy.name, "digest": self.policy.digest},
            "configsets": None
            if self.configsets is None
            else [c.to_json() for c in self.configsets],
            "latest_release": None if latest is None else latest.to_json(),
        }
        if self.releases is not None:
            out["releases"] = [r.to_json() for r in self.releases]
        return out


def configsets_from_json(value: object, what: str = "configsets") -> tuple[ConfigSetRef, ...]:
    """A stored ``configsets`` JSON list as refs, in stored order."""
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list")
    return tuple(ConfigSetRef.from_json(c, f"{what}[{i}]") for i, c in enumerate(value))


def release_from_row(m: RowMapping) -> Release:
    """A ``releases`` row (any columns of :data:`RELEASE_COLUMNS`, bundle optional) as a Release."""
    return Release(
        group=GroupName(_str(m["group"])),
        sequence=Sequence(_int(m["sequence"])),
        digest=Digest(_str(m["digest"])),
        configsets=configsets_from_json(m["configsets"], "release.configsets"),
        policy=PolicyRef.from_json(m["policy"], "release.policy"),
        created_at=_time(m["created_at"]),
        expires_at=_time(m["expires_at"]),
        previous_id=None if m["previous_id"] is None else ReleaseId(_str(m["previous_id"])),
        commit=None if m["commit"] is None else _str(m["commit"]),
        state=_str(m["state"]),
        reason=None if m["reason"] is None else _str(m["reason"]),
        created_by=_str(m["created_by"]),
    )


def group_from_row(m: RowMapping) -> GroupView:
    """A ``group_states`` row as the defined part of a :class:`GroupView`."""
    return GroupView(
        name=GroupName(_str(m["name"])),
        commit=_str(m["commit"]),
        policy=PolicyRef(PolicyName(_str(m["policy"])), Digest(_str(m["policy_digest"]))),
        configsets=configsets_from_json(m["configsets"], "group_state.configsets"),
    )


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"stored value {value!r} is not text")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise ValueError(f"stored value {value!r} is not an integer")
    return value


def _time(value: object) -> dt.datetime:
    when = utc(value)
    if when is None:
        raise ValueError("a stored time is missing")
    return when
