"""Nodes as the Center stores them, and the errors of enrollment.

Invariants: a :class:`NodeRecord` is built from a ``nodes`` row only by
:func:`node_record` (timestamps in UTC; a row without ``created_at`` is an
:class:`EnrollmentError`); every :class:`EnrollmentError` message is safe to
show to the caller. No store access here beyond turning rows into records.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from konorkestra.center.pki.ca import IssuedCertificate
from konorkestra.center.store.engine import utc
from konorkestra.model.types import GroupName, NodeId

NODE_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")


class EnrollmentError(Exception):
    """Base of enrollment errors; the message is safe to show to the caller."""


class EnrollmentRefused(EnrollmentError):
    """The join was refused (always :data:`JOIN_TOKEN_REFUSED` for token problems)."""


class NodeNotAllowed(EnrollmentError):
    """The node is unknown or revoked."""


@dataclass(frozen=True)
class NodeRecord:
    id: NodeId
    name: str
    groups: tuple[GroupName, ...]
    labels: Mapping[str, str]
    cert_serial: str | None
    cert_not_after: dt.datetime | None
    revoked_at: dt.datetime | None
    last_seen: dt.datetime | None
    created_at: dt.datetime


@dataclass(frozen=True)
class Enrolled:
    node: NodeRecord
    certificate: IssuedCertificate


def required_utc(value: object) -> dt.datetime:
    parsed = utc(value)
    if parsed is None:
        raise EnrollmentError("store row lacks a required timestamp")
    return parsed


def node_record(row: sa.Row[Any]) -> NodeRecord:
    m = row._mapping
    return NodeRecord(
        id=NodeId(m["id"]),
        name=m["name"],
        groups=tuple(GroupName(g) for g in m["groups"] or ()),
        labels=dict(m["labels"] or {}),
        cert_serial=None if m["cert_serial"] is None else str(m["cert_serial"]),
        cert_not_after=utc(m["cert_not_after"]),
        revoked_at=utc(m["revoked_at"]),
        last_seen=utc(m["last_seen"]),
        created_at=required_utc(m["created_at"]),
    )
